//! The daemon's own crash as part of the lifecycle, through the real binary: after a
//! SIGKILL of the daemon, `status` names the instances still running, `up` adopts them
//! (same pids, no port error, logs captured again), an adopted instance that dies is
//! restarted, and `down` leaves nothing.

mod common;

use common::{DEADLINE, Project, kill9, wait_until};

fn pids(project: &Project) -> Vec<(String, u64, u64)> {
    let status = project.status_json();
    let mut found = Vec::new();
    for service in status["services"].as_array().into_iter().flatten() {
        for instance in service["instances"].as_array().into_iter().flatten() {
            found.push((
                instance["id"].as_str().unwrap_or_default().to_string(),
                instance["pid"].as_u64().unwrap_or(0),
                instance["port"].as_u64().unwrap_or(0),
            ));
        }
    }
    found.sort();
    found
}

#[test]
fn a_killed_daemon_s_instances_are_adopted_supervised_and_stopped() {
    let project = Project::new(
        r#"
[admin]
port = 0
[gateway]
port = 0
[[gateway.routes]]
prefix = "/web"
service = "web"
[services.web]
command = [{fixture}, "chatty", "2"]
replicas = 2
restart = { backoff = "50ms" }
[services.api]
command = [{fixture}, "http"]
depends_on = ["web"]
"#,
    );
    project.up(&[]);
    let up_at = std::time::Instant::now();
    let before = pids(&project);
    assert_eq!(before.len(), 3, "{before:?}");
    let old_daemon = project.daemon_pid();
    kill9(old_daemon as u64);
    wait_until(DEADLINE, || {
        let gone = !std::path::Path::new(&format!("/proc/{old_daemon}")).exists()
            || std::fs::read_to_string(format!("/proc/{old_daemon}/stat"))
                .is_ok_and(|s| s.contains(") Z"));
        gone.then_some(()).ok_or(())
    })
    .expect("the daemon died");

    // status says plainly what happened and what to do.
    let status = project.run(&["status"]);
    assert_eq!(status.code, 1, "{status}");
    assert!(status.stdout.contains("daemon"), "{status}");
    assert!(status.stdout.contains("is gone"), "{status}");
    for (id, pid, _) in &before {
        assert!(status.stdout.contains(id.as_str()), "{id}: {status}");
        assert!(status.stdout.contains(&pid.to_string()), "{pid}: {status}");
    }
    assert!(status.stdout.contains("servio up"), "{status}");
    let json = project.run(&["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(doc["running"], false);
    assert_eq!(
        doc["daemon_gone"]["orphans"].as_array().map(Vec::len),
        Some(3),
        "{doc}"
    );
    let verb = project.run(&["restart"]);
    assert_eq!(verb.code, 1, "{verb}");
    assert!(verb.stderr.contains("`servio up` adopts them"), "{verb}");

    // up adopts them: same pids and ports, nothing restarted, no port error.
    let up = project.up(&[]);
    assert!(up.stderr.contains("adopted 3 instance(s)"), "{up}");
    assert_eq!(pids(&project), before, "the same processes serve");
    assert_ne!(project.daemon_pid(), old_daemon);
    // Their uptime goes on from when they started, not from the adoption.
    let api = &project.instances("api")[0];
    let since_up = up_at.elapsed().as_millis() as u64;
    assert!(
        api["uptime_ms"].as_u64().unwrap_or(0) + 20 >= since_up,
        "{api} (up {since_up} ms ago)"
    );

    // The adopted web instances are supervised: killed → restarted.
    let (victim_id, victim_pid, _) = before
        .iter()
        .find(|(id, _, _)| id == "web-1")
        .unwrap()
        .clone();
    kill9(victim_pid);
    let restarted = wait_until(DEADLINE, || {
        let now = pids(&project);
        let entry = now.iter().find(|(id, _, _)| *id == victim_id).cloned();
        match entry {
            Some((_, pid, _)) if pid != 0 && pid != victim_pid => Ok(pid),
            other => Err(other),
        }
    })
    .expect("the adopted instance was restarted");
    wait_until(DEADLINE, || {
        let web = project.instances("web");
        let healthy = web.iter().all(|i| i["health"] == "healthy");
        healthy.then_some(()).ok_or(web)
    })
    .expect("healthy again");
    let instance = project
        .instances("web")
        .into_iter()
        .find(|i| i["id"] == victim_id.as_str())
        .unwrap();
    assert_eq!(instance["restarts"], 1, "{instance}");
    assert!(
        instance["last_exit"]
            .as_str()
            .is_some_and(|e| e.contains("exited")),
        "{instance}"
    );
    assert_ne!(restarted, victim_pid);

    // Output of an adopted instance is captured again (its pipe outlived the daemon).
    let logs = project.run(&["logs", "web"]);
    assert!(logs.stdout.contains("line 1"), "{logs}");

    project.down_and_assert_clean();
}

#[test]
fn state_json_follows_every_restart_and_is_private() {
    // What a new daemon adopts from: after each rolling restart it lists exactly the
    // instances that run, and only the owner can read it.
    let project = Project::new(
        r#"
[admin]
port = 0
[services.web]
command = [{fixture}, "http"]
replicas = 3
"#,
    );
    project.up(&[]);
    for _ in 0..3 {
        let run = project.run(&["restart", "-q"]);
        assert_eq!(run.code, 0, "{run}");
        let text = std::fs::read_to_string(project.file(".servio/state.json")).expect("state");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("whole JSON");
        assert_eq!(doc["instances"].as_array().map(Vec::len), Some(3), "{doc}");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(project.file(".servio/state.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "state.json is private: {mode:o}");
    project.down_and_assert_clean();
}

/// Found by scripts/soak: `up` run the moment after the daemon's SIGKILL met the dying
/// daemon still accepting on its socket and failed ("connection reset"); and the new
/// daemon's gateway answered its first clients 503 "no healthy instance" until the adopted
/// instances were registered. Now `up` waits the dying daemon out, and the gateway takes
/// clients only once the adopted instances' health is known: every answer is a 200.
#[test]
fn up_right_after_the_daemon_s_kill_adopts_and_the_gateway_answers_every_request() {
    let project = Project::new(
        r#"
[admin]
port = 0
[gateway]
port = 0
[[gateway.routes]]
prefix = "/web"
service = "web"
[services.web]
command = [{fixture}, "http"]
replicas = 2
"#,
    );
    project.up(&[]);
    let gateway = project.status_json()["gateway_url"]
        .as_str()
        .expect("a gateway url")
        .to_string();
    assert_eq!(common::http_get(&format!("{gateway}/web/x")).0, 200);
    let before = pids(&project);

    // A client that keeps asking through the crash: refused connections are expected while
    // no daemon listens; any answer must be a 200.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (stop, url) = (stop.clone(), format!("{gateway}/web/x"));
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                match common::http_get(&url) {
                    (0, _) => std::thread::sleep(std::time::Duration::from_millis(1)),
                    answer => answers.push(answer),
                }
            }
            answers
        })
    };
    kill9(project.daemon_pid() as u64);
    let up = project.run(&["up", "-q"]);
    assert_eq!(up.code, 0, "{up}");
    // The client gets answers again before it stops.
    let answered_after = wait_until(DEADLINE, || {
        let (status, _) = common::http_get(&format!("{gateway}/web/x"));
        (status == 200).then_some(()).ok_or(status)
    });
    stop.store(true, std::sync::atomic::Ordering::Release);
    let answers = client.join().expect("the client thread");
    answered_after.expect("the gateway answers after up");
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(refused.is_empty(), "answers other than 200: {refused:?}");
    assert_eq!(pids(&project), before, "the same instances were adopted");
    project.down_and_assert_clean();
}
