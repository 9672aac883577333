//! The happy path through the real binary: up → status → logs → down, dependency order,
//! `up` twice keeps one daemon, `up SERVICE` starts just it and its dependencies.

mod common;

use common::Project;

const TWO_TIER: &str = r#"
[project]
name = "shop"

[admin]
port = 0

[services.db]
command = [{fixture}, "record", "started.txt"]
health_check = { interval = "200ms" }

[services.api]
command = [{fixture}, "record", "started.txt"]
depends_on = ["db"]
replicas = 2
health_check = { interval = "200ms" }

[services.worker]
run = "echo worker says hi; exec python3 -m http.server $PORT --bind 127.0.0.1"
health_check = { kind = "tcp" }
"#;

#[test]
fn up_status_logs_down() {
    let project = Project::new(TWO_TIER);
    project.up(&["api"]);

    // Dependencies start first, and only what `api` needs starts.
    let started = std::fs::read_to_string(project.file("started.txt")).unwrap();
    let order: Vec<&str> = started.lines().collect();
    assert_eq!(order, ["db", "api", "api"], "start order");

    let status = project.status_json();
    assert_eq!(status["running"], true);
    let services: Vec<&str> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["api", "db"], "worker was not asked for");
    let api = project.instances("api");
    assert_eq!(api.len(), 2);
    let ports: Vec<u64> = api.iter().map(|i| i["port"].as_u64().unwrap()).collect();
    assert_ne!(ports[0], ports[1], "replicas get their own ports");
    for instance in &api {
        assert_eq!(instance["health"], "healthy");
        assert!(instance["pid"].as_u64().unwrap() > 0);
        assert_eq!(instance["restarts"], 0);
        assert!(instance["uptime_ms"].is_u64());
        // Each instance really serves on its port.
        let (code, body) =
            common::http_get(&format!("http://127.0.0.1:{}/hello", instance["port"]));
        assert_eq!(code, 200);
        assert!(body.starts_with(instance["id"].as_str().unwrap()), "{body}");
    }

    let table = project.run(&["status"]);
    assert_eq!(table.code, 0);
    for column in [
        "SERVICE", "INSTANCE", "PID", "PORT", "HEALTH", "RESTARTS", "UPTIME",
    ] {
        assert!(table.stdout.contains(column), "{table}");
    }
    assert!(table.stdout.contains("api-2"), "{table}");
    assert!(
        table.stdout.contains("admin    http://127.0.0.1:"),
        "{table}"
    );

    // Start the rest: the same daemon picks up the worker.
    project.up(&[]);
    let worker = project.instances("worker");
    assert_eq!(worker.len(), 1);
    assert_eq!(worker[0]["health"], "healthy");

    let logs = project.run(&["logs", "api"]);
    assert_eq!(logs.code, 0, "{logs}");
    assert!(logs.stdout.contains("api-1 | api-1 listening on"), "{logs}");
    assert!(logs.stdout.contains("api-2 | api-2 listening on"), "{logs}");

    project.down_and_assert_clean();
    // Logs outlive the stack; down is idempotent; status says plainly nothing runs.
    let logs = project.run(&["logs", "worker"]);
    assert!(logs.stdout.contains("worker says hi"), "{logs}");
    let again = project.run(&["down"]);
    assert_eq!(again.code, 0, "{again}");
    assert!(again.stdout.contains("nothing is running"), "{again}");
    let status = project.run(&["status"]);
    assert_eq!(status.code, 0);
    assert!(status.stdout.contains("servio is not running"), "{status}");
    assert!(status.stdout.contains("servio up"), "{status}");
    assert!(!project.file(".servio/control.sock").exists());
}

#[test]
fn up_twice_gives_one_daemon() {
    let project = Project::new(TWO_TIER);
    // Two concurrent `up`s race for the daemon lock: exactly one daemon wins.
    let first = project
        .servio(&["up", "db"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let second = project.run(&["up", "db"]);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success() || second.code == 0);
    project.up(&["db"]);
    let daemons: Vec<_> = project
        .processes()
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(" daemon "))
        .collect();
    assert_eq!(daemons.len(), 1, "{daemons:?}");
    let db = project.instances("db");
    assert_eq!(db.len(), 1, "one instance, not one per up: {db:?}");
    project.down_and_assert_clean();
}

#[test]
fn the_control_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let project = Project::new(TWO_TIER);
    project.up(&["db"]);
    let mode = std::fs::metadata(project.file(".servio/control.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The registry never carries the environment.
    let admin = project.admin_url();
    let (code, body) = common::http_get(&format!("{admin}/v1/services"));
    assert_eq!(code, 200);
    assert!(!body.contains("PATH") && !body.contains("env"), "{body}");
    project.down_and_assert_clean();
}

#[test]
fn ctrl_c_on_a_foreground_up_stops_the_stack() {
    let project = Project::new(TWO_TIER);
    let mut foreground = project
        .servio(&["up", "--foreground", "api"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let healthy = common::wait_until(common::DEADLINE, || {
        let run = project.run(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
        let all = status["services"].as_array().cloned().unwrap_or_default();
        let ok = all.len() == 2
            && all.iter().all(|s| {
                s["instances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|i| i["health"] == "healthy")
            });
        ok.then_some(()).ok_or(status)
    });
    assert!(healthy.is_ok(), "{healthy:?}");
    assert!(project.processes().len() >= 4, "servio + db + 2 api");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(foreground.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let exited = common::wait_until(common::DEADLINE, || {
        foreground.try_wait().unwrap().ok_or(())
    });
    assert!(exited.expect("foreground up exits on Ctrl-C").success());
    assert!(project.processes().is_empty(), "{:?}", project.processes());
    assert!(!project.file(".servio/control.sock").exists());
}

#[test]
fn up_again_restarts_a_service_whose_instances_ended() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.once]
command = [{fixture}, "http"]
restart = { policy = "never" }
"#,
    );
    project.up(&[]);
    let first = project.instances("once")[0]["pid"].as_u64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let exited = common::wait_until(common::DEADLINE, || {
        let instance = project.instances("once")[0].clone();
        (instance["health"] == "exited")
            .then_some(instance.clone())
            .ok_or(instance)
    })
    .expect("policy never leaves it exited");
    assert_eq!(exited["last_exit"], "killed by SIGKILL");
    project.up(&[]);
    let again = project.instances("once")[0].clone();
    assert_eq!(again["health"], "healthy");
    assert_ne!(again["pid"].as_u64().unwrap(), first);
    project.down_and_assert_clean();
}
