//! Operating a running stack through the real binary: rolling restarts and scaling under
//! gateway load with zero failed requests, reconcile on re-`up` (only what changed, with
//! its reason; `--dry-run` changes nothing), a replacement that never gets healthy, `stop`
//! and `start` with dependents, and completions.

mod common;
mod gateway_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use common::{DEADLINE, Project, wait_until};
use gateway_support::{agent, gateway_addr, send};

/// A gateway in front of `web` (and `api`, which depends on it) with `replicas` of web.
fn stack(replicas: u32) -> Project {
    Project::new(&format!(
        r#"
[admin]
port = 0
[gateway]
port = 0
[[gateway.routes]]
prefix = "/web"
service = "web"
[[gateway.routes]]
prefix = "/api"
service = "api"
[services.web]
command = [{{fixture}}, "keepalive"]
replicas = {replicas}
health_check = {{ interval = "200ms" }}
stop = {{ timeout = "3s" }}
[services.api]
command = [{{fixture}}, "keepalive"]
depends_on = ["web"]
"#
    ))
}

/// A client thread sending GETs and idempotent PUTs through the gateway until stopped,
/// counting answers and failures (anything but 200, including connection errors).
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    fn start(project: &Project, path: &str) -> Load {
        let url = format!("http://{}{path}", gateway_addr(project));
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let thread = {
            let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let (method, body) = if n % 2 == 0 {
                        ("PUT", Some(&b"{\"x\":1}"[..]))
                    } else {
                        ("GET", None)
                    };
                    let reply = send(&agent, method, &url, &[], body);
                    if reply.status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{method} → {} {}", reply.status, reply.body));
                    }
                }
            })
        };
        let load = Load {
            stop,
            ok,
            failures,
            thread: Some(thread),
        };
        load.wait_for_answers(20);
        load
    }

    fn answered(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `more` further requests were answered (the load really runs).
    fn wait_for_answers(&self, more: u64) {
        let target = self.answered() + more;
        wait_until(DEADLINE, || {
            (self.answered() >= target).then_some(()).ok_or(())
        })
        .expect("the load gets answers");
    }

    /// Stops the client and returns its failures.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("load thread");
        }
        self.failures.lock().unwrap().clone()
    }
}

/// Fails with how many requests failed and the first few answers.
fn assert_none_failed(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failed requests, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

fn ports(project: &Project, service: &str) -> Vec<u64> {
    let mut ports: Vec<u64> = project
        .instances(service)
        .iter()
        .filter_map(|i| i["port"].as_u64())
        .collect();
    ports.sort();
    ports
}

#[test]
fn a_rolling_restart_of_one_replica_fails_no_gateway_request() {
    let project = stack(1);
    project.up(&[]);
    let before = project.pids("web");
    let api_before = project.pids("api");
    let load = Load::start(&project, "/web/x");
    let run = project.run(&["restart", "web"]);
    assert_eq!(run.code, 0, "{run}");
    load.wait_for_answers(20);
    let failures = load.finish();
    assert_none_failed(&failures);
    let after = project.pids("web");
    assert_eq!(after.len(), 1);
    assert_ne!(after, before, "a new process serves");
    assert_eq!(project.pids("api"), api_before, "api untouched");
    assert!(run.stdout.contains("restarted web"), "{run}");
    project.down_and_assert_clean();
}

#[test]
fn restart_of_every_service_with_replicas_fails_no_gateway_request() {
    let project = stack(2);
    project.up(&[]);
    let before = project.pids("web");
    let web = Load::start(&project, "/web/x");
    let api = Load::start(&project, "/api/y");
    let run = project.run(&["restart", "--json"]);
    assert_eq!(run.code, 0, "{run}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json");
    assert_eq!(report["ok"], true, "{report}");
    let services: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["web", "api"], "dependencies first");
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] == "restart"),
        "{report}"
    );
    web.wait_for_answers(10);
    api.wait_for_answers(10);
    let failures = [web.finish(), api.finish()].concat();
    assert_none_failed(&failures);
    let after = project.pids("web");
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} → {after:?}"
    );
    project.down_and_assert_clean();
}

#[test]
fn scale_up_and_down_under_load_fails_no_request_and_replicas_never_collide() {
    let project = stack(1);
    project.up(&[]);
    let load = Load::start(&project, "/web/x");
    let run = project.run(&["scale", "web=3"]);
    assert_eq!(run.code, 0, "{run}");
    let instances = project.instances("web");
    assert_eq!(instances.len(), 3, "{instances:?}");
    assert!(instances.iter().all(|i| i["health"] == "healthy"));
    let distinct: std::collections::BTreeSet<u64> = ports(&project, "web").into_iter().collect();
    assert_eq!(distinct.len(), 3, "one port each");

    let run = project.run(&["scale", "web=1"]);
    assert_eq!(run.code, 0, "{run}");
    let left = project.instances("web");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], "web-1", "the newest went first");
    load.wait_for_answers(20);
    let failures = load.finish();
    assert_none_failed(&failures);

    let refused = project.run(&["scale", "nope=2"]);
    assert_eq!(refused.code, 2, "{refused}");
    assert!(
        refused.stderr.contains("unknown service `nope`"),
        "{refused}"
    );
    let malformed = project.run(&["scale", "web"]);
    assert_eq!(malformed.code, 2, "{malformed}");
    project.down_and_assert_clean();
}

#[test]
fn up_again_restarts_only_what_changed_and_says_why() {
    let project = stack(1);
    project.up(&[]);
    let web = project.pids("web");
    let api = project.pids("api");
    let manifest = std::fs::read_to_string(project.file("services.toml")).unwrap();

    // Nothing changed: same processes.
    project.up(&[]);
    assert_eq!(
        (project.pids("web"), project.pids("api")),
        (web.clone(), api.clone())
    );

    let edited = manifest.replacen(
        "depends_on = [\"web\"]",
        "depends_on = [\"web\"]\nenv = { MODE = \"debug\" }",
        1,
    );
    project.write_manifest(&edited);
    let dry = project.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(dry.stdout.contains("api  restart (env changed)"), "{dry}");
    assert!(dry.stdout.contains("web  keep"), "{dry}");
    assert_eq!(project.pids("api"), api, "--dry-run changes nothing");
    let json = project.run(&["up", "--dry-run", "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("json plan");
    assert_eq!(plan["steps"][1]["reasons"][0], "env changed", "{plan}");

    // The reconcile's rolling restart fails no request either.
    let load = Load::start(&project, "/api/y");
    let run = project.run(&["up"]);
    assert_eq!(run.code, 0, "{run}");
    load.wait_for_answers(10);
    assert_none_failed(&load.finish());
    assert!(run.stderr.contains("api: restart (env changed)"), "{run}");
    assert_eq!(project.pids("web"), web, "web untouched");
    assert_ne!(project.pids("api"), api, "api rolled");

    // A removed service stops; replicas alone scale.
    let trimmed = edited.replacen("replicas = 1", "replicas = 2", 1).replace(
        "[[gateway.routes]]\nprefix = \"/api\"\nservice = \"api\"\n",
        "",
    );
    let trimmed = trimmed[..trimmed.find("[services.api]").unwrap()].to_string();
    project.write_manifest(&trimmed);
    let run = project.run(&["up"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("api: stop"), "{run}");
    assert!(run.stderr.contains("web: scale 1 → 2"), "{run}");
    assert_eq!(project.pids("web").len(), 2);
    assert!(
        project.pids("web").contains(&web[0]),
        "the first instance kept"
    );
    assert!(project.pids("api").is_empty());
    project.down_and_assert_clean();
}

#[test]
fn a_replacement_that_never_gets_healthy_leaves_the_old_instance_serving() {
    let project = stack(1);
    project.up(&[]);
    let web = project.pids("web");
    let manifest = std::fs::read_to_string(project.file("services.toml")).unwrap();
    let broken = manifest.replacen("\"keepalive\"]\nreplicas", "\"hang\"]\nreplicas", 1);
    assert_ne!(broken, manifest);
    project.write_manifest(&broken);
    let load = Load::start(&project, "/web/x");
    let run = project.run(&["up", "--timeout", "2s"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("web: restart (command changed)"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("`web` did not become healthy: not healthy after 2s"),
        "{run}"
    );
    let failures = load.finish();
    assert_none_failed(&failures);
    assert_eq!(project.pids("web"), web, "the old instance serves on");
    let instances = project.instances("web");
    assert_eq!(instances.len(), 1, "the replacement is gone: {instances:?}");
    // Still a change to apply: the next `up` tries again.
    let dry = project.run(&["up", "--dry-run"]);
    assert!(
        dry.stdout.contains("web  restart (command changed)"),
        "{dry}"
    );
    project.down_and_assert_clean();
}

#[test]
fn stop_refuses_while_dependents_run_and_start_brings_services_back() {
    let project = stack(1);
    project.up(&[]);
    let refused = project.run(&["stop", "web"]);
    assert_eq!(refused.code, 2, "{refused}");
    assert!(
        refused.stderr.contains(
            "cannot stop web: api depends on it; stop it first, or add --with-dependents"
        ),
        "{refused}"
    );
    assert_eq!(project.pids("web").len(), 1);

    let run = project.run(&["stop", "web", "--with-dependents", "-q"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.is_empty() && run.stderr.is_empty(), "-q: {run}");
    for service in ["web", "api"] {
        let instances = project.instances(service);
        assert!(
            instances.iter().all(|i| i["health"] == "stopped"),
            "{instances:?}"
        );
    }
    let status = project.run(&["status"]);
    assert!(status.stdout.contains("stopped"), "{status}");

    let run = project.run(&["start", "api"]);
    assert_eq!(run.code, 0, "{run}");
    for service in ["web", "api"] {
        let instances = project.instances(service);
        assert!(
            instances.iter().all(|i| i["health"] == "healthy"),
            "{instances:?}"
        );
    }
    project.down_and_assert_clean();
}

#[test]
fn verbs_without_a_daemon_say_how_to_start_one() {
    let project = stack(1);
    for verb in [&["restart"][..], &["stop"], &["start"], &["scale", "web=2"]] {
        let run = project.run(verb);
        assert_eq!(run.code, 1, "{verb:?}: {run}");
        assert!(run.stderr.contains("servio up"), "{verb:?}: {run}");
    }
    let dry = project.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(dry.stdout.contains("web  start"), "{dry}");
    assert!(
        !project.file(".servio/control.sock").exists(),
        "no daemon started"
    );
}

#[test]
fn completions_generate_for_each_shell() {
    let project = Project::new("");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef servio"),
        ("fish", "complete -c servio"),
    ] {
        let run = project.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {run}");
        assert!(
            run.stdout.contains(marker),
            "{shell}: {}",
            &run.stdout[..200.min(run.stdout.len())]
        );
        assert!(
            run.stdout.contains("restart"),
            "{shell} completes the verbs"
        );
    }
}

/// Two free neighbouring ports.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let first = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        if first < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", first + 1)).is_ok() {
            return first;
        }
    }
    panic!("no two free neighbouring ports");
}

#[test]
fn replicas_never_take_another_service_s_configured_port() {
    let port = free_port_pair();
    let project = Project::new(&format!(
        r#"
[admin]
port = 0
[services.web]
command = [{{fixture}}, "http"]
port = {port}
replicas = 3
[services.next]
command = [{{fixture}}, "http"]
port = {}
"#,
        port + 1
    ));
    project.up(&[]);
    let web = ports(&project, "web");
    assert_eq!(web.len(), 3, "{web:?}");
    assert!(
        web.contains(&u64::from(port)),
        "the first replica takes `port`: {web:?}"
    );
    assert!(!web.contains(&u64::from(port + 1)), "{web:?}");
    assert_eq!(ports(&project, "next"), [u64::from(port + 1)]);
    project.down_and_assert_clean();
}
