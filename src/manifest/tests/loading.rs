//! Valid manifests: defaults, explicit values, launch resolution, the starter template,
//! start order, start-time port checks and locating the file.

use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn a_minimal_manifest_gets_every_default() {
    let (dir, m) = manifest_of(A);
    let root = dir.path().canonicalize().expect("canonical");
    assert_eq!(m.root, root);
    assert_eq!(m.path, root.join("services.toml"));
    assert_eq!(
        m.project,
        root.file_name().and_then(|n| n.to_str()).unwrap_or("")
    );
    assert_eq!((m.gateway.port, m.admin.port), (3000, 2999));
    assert!(!m.gateway_enabled());
    assert_eq!(
        m.logs,
        LogPolicy {
            max_size: 10 << 20,
            max_files: 3
        }
    );
    let a = &m.services["a"];
    assert_eq!(a.launch, Launch::Command(vec!["true".into()]));
    assert_eq!((a.version.as_str(), a.port, a.replicas), ("0.0.0", None, 1));
    assert_eq!(a.cwd, root);
    let h = &a.health_check;
    assert_eq!((h.kind, h.path.as_str()), (ProbeKind::Http, "/health"));
    assert_eq!(
        (h.interval, h.timeout, h.start_period),
        (secs(2), secs(1), secs(30))
    );
    assert_eq!((h.unhealthy_threshold, h.liveness_threshold), (3, 10));
    let r = &a.restart;
    assert_eq!(
        (r.mode, r.max_restarts, r.within),
        (RestartMode::OnFailure, 5, secs(60))
    );
    assert_eq!(
        (r.backoff, r.max_backoff),
        (Duration::from_millis(100), secs(30))
    );
    assert_eq!((a.stop.signal, a.stop.timeout), (Signal::SIGTERM, secs(10)));
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn gateway_keys_have_defaults_and_keep_explicit_values() {
    let (_dir, m) = manifest_of(A);
    let g = &m.gateway;
    assert_eq!(
        (g.connect_timeout, g.per_try_timeout, g.request_timeout),
        (secs(2), secs(15), secs(15))
    );
    assert_eq!(
        (g.header_read_timeout, g.idle_timeout),
        (secs(10), secs(60))
    );
    assert_eq!((g.max_body, g.max_connections), (10 << 20, 4096));
    assert_eq!((g.max_concurrent, g.retries), (1024, 1));

    let text = format!(
        "[gateway]\nconnect_timeout = \"250ms\"\nrequest_timeout = \"5s\"\n\
        header_read_timeout = \"1s\"\nidle_timeout = \"2s\"\nmax_body = \"1KiB\"\n\
        max_connections = 8\nmax_concurrent = 2\nretries = 0\n\
        [[gateway.routes]]\nprefix = \"/a\"\nservice = \"a\"\n\
        [[gateway.routes]]\nprefix = \"/b\"\nservice = \"a\"\nbalance = \"round_robin\"\n{A}"
    );
    let (_dir, m) = manifest_of(&text);
    let g = &m.gateway;
    assert_eq!(g.connect_timeout, Duration::from_millis(250));
    assert_eq!((g.per_try_timeout, g.request_timeout), (secs(5), secs(5)));
    assert_eq!((g.header_read_timeout, g.idle_timeout), (secs(1), secs(2)));
    assert_eq!((g.max_body, g.max_connections), (1024, 8));
    assert_eq!((g.max_concurrent, g.retries), (2, 0));
    // Balance is per service: one route setting it sets it for every route to the service.
    let balances: Vec<Balance> = g.routes.iter().map(|r| r.balance).collect();
    assert_eq!(balances, [Balance::RoundRobin, Balance::RoundRobin]);
}

#[test]
fn explicit_values_are_kept() {
    let text = "[project]\nname = \"shop\"\n[gateway]\nport = 0\n[admin]\nport = 0\n\
        [logs]\nmax_size = \"512KiB\"\nmax_files = 0\n\
        [services.a]\nversion = \"2.1.0\"\nrun = \"echo hi\"\nport = 4000\nreplicas = 2\n\
        cwd = \"sub/..\"\nenv = { K = \"v\" }\ndepends_on = [\"b\", \"b\"]\n\
        health_check = { kind = \"tcp\", interval = \"500ms\", liveness_threshold = 0 }\n\
        restart = { policy = \"always\", max_restarts = 0 }\nstop = { signal = \"INT\", timeout = \"1m\" }\n\
        [services.b]\ninstances = [\"127.0.0.1:8081\", \"localhost:8082\"]\n";
    let (dir, m) = manifest_of(text);
    assert_eq!(m.project, "shop");
    assert!(m.gateway_enabled());
    assert_eq!((m.gateway.port, m.admin.port), (0, 0));
    assert_eq!(
        m.logs,
        LogPolicy {
            max_size: 512 << 10,
            max_files: 0
        }
    );
    let a = &m.services["a"];
    let sh = ["/bin/sh", "-c", "echo hi"].map(String::from).to_vec();
    assert_eq!(a.launch, Launch::Command(sh));
    assert_eq!(
        (a.version.as_str(), a.port, a.replicas),
        ("2.1.0", Some(4000), 2)
    );
    assert_eq!(a.cwd, dir.path().canonicalize().expect("canonical"));
    assert_eq!(a.env.get("K").map(String::as_str), Some("v"));
    assert_eq!(a.depends_on, ["b"]);
    assert_eq!(
        (a.health_check.kind, a.health_check.interval),
        (ProbeKind::Tcp, Duration::from_millis(500))
    );
    assert_eq!(a.health_check.liveness_threshold, 0);
    assert_eq!(
        (a.restart.mode, a.restart.max_restarts),
        (RestartMode::Always, 0)
    );
    assert_eq!((a.stop.signal, a.stop.timeout), (Signal::SIGINT, secs(60)));
    let addresses = vec![([127, 0, 0, 1], 8081).into(), ([127, 0, 0, 1], 8082).into()];
    assert_eq!(m.services["b"].launch, Launch::External(addresses));
}

#[test]
fn leading_servio_is_this_binary() {
    let (_dir, m) = manifest_of("[services.menu]\ncommand = [\"servio\", \"serve\", \"menu\"]\n");
    let exe = std::env::current_exe()
        .expect("exe")
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        m.services["menu"].launch,
        Launch::Command(vec![exe, "serve".into(), "menu".into()])
    );
}

#[test]
fn the_starter_template_is_valid() {
    let (_dir, m) = manifest_of(include_str!("../../../templates/services.toml"));
    assert_eq!(m.project, "servio");
    assert_eq!(m.services.len(), 3);
    assert_eq!(m.gateway.routes.len(), 3);
    assert_eq!(m.services["order-service"].port, Some(3001));
    let order = m.start_order(&[]).expect("order");
    assert_eq!(
        order,
        ["inventory-service", "menu-service", "order-service"]
    );
}

#[test]
fn start_order_takes_dependencies_along() {
    let text = "[services.order]\nrun = \"x\"\ndepends_on = [\"menu\", \"stock\"]\n\
        [services.menu]\nrun = \"x\"\n[services.stock]\nrun = \"x\"\ndepends_on = [\"db\"]\n\
        [services.db]\nrun = \"x\"\n[services.other]\nrun = \"x\"\n";
    let (_dir, m) = manifest_of(text);
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        m.start_order(&[]).expect("all"),
        names(&["db", "menu", "other", "stock", "order"])
    );
    assert_eq!(
        m.start_order(&names(&["order"])).expect("order"),
        names(&["db", "menu", "stock", "order"])
    );
    assert_eq!(
        m.start_order(&names(&["stock", "menu"])).expect("two"),
        names(&["db", "menu", "stock"])
    );
    let error = m.start_order(&names(&["x"])).expect_err("unknown");
    assert_eq!(
        error,
        "unknown service `x`; known services: db, menu, order, other, stock"
    );
}

#[test]
fn check_ports_names_the_holder_at_the_port_value() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let text = format!("[admin]\nport = 0\n[services.a]\nrun = \"x\"\nport = {port}\n");
    let (_dir, m) = manifest_of(&text);
    let errors = m.check_ports(&|_| false).expect_err("port is taken").0;
    assert_eq!(errors.len(), 1, "{}", ManifestErrors(errors));
    let error = &errors[0];
    assert_eq!(
        (error.line, error.column, error.key.as_str()),
        (5, 8, "services.a.port")
    );
    let pid = format!(
        "port {port} is already in use by pid {} (",
        std::process::id()
    );
    assert!(error.message.starts_with(&pid), "{error}");
    assert_eq!(error.fix, "stop that process or choose another port");
    assert!(error.to_string().contains(&format!(
        "services.toml:5:8: `services.a.port`: port {port}"
    )));
    // A port the stack itself holds is fine.
    assert!(m.check_ports(&|p| p == port).is_ok());
    drop(listener);
    assert!(m.check_ports(&|_| false).is_ok());
}

#[test]
fn locate_finds_the_nearest_manifest_or_says_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("services.toml");
    std::fs::write(&path, A).expect("write");
    let found = locate(Some(dir.path())).expect("folder means its services.toml");
    assert_eq!(found, path.canonicalize().expect("canonical"));
    assert!(found.is_absolute());
    let missing = locate(Some(Path::new("/nonexistent/services.toml"))).expect_err("missing");
    assert_eq!(missing.0[0].line, 0);
    assert!(missing.to_string().contains("servio init"), "{missing}");
}
