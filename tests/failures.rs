//! What goes wrong, through the real binary: a service that crashes at start, one that never
//! becomes healthy, one that ignores SIGTERM, a daemon killed with SIGKILL, a port in use.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, Project, wait_until};

#[test]
fn a_crash_at_start_fails_up_with_its_log_lines_and_status_shows_crash_looping() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.broken]
command = [{fixture}, "crash"]
restart = { policy = "always", max_restarts = 50, backoff = "50ms", max_backoff = "200ms" }
"#,
    );
    let run = project.run(&["up"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("`broken` did not become healthy"),
        "{run}"
    );
    assert!(run.stderr.contains("exited with code 1"), "{run}");
    assert!(
        run.stderr.contains("boom: missing configuration"),
        "log lines shown: {run}"
    );

    let looping = wait_until(DEADLINE, || {
        let instances = project.instances("broken");
        let health = instances[0]["health"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (health == "crash-looping")
            .then_some(instances)
            .ok_or(health)
    })
    .expect("status shows crash-looping");
    assert!(looping[0]["restarts"].as_u64().unwrap() >= 1);
    assert_eq!(looping[0]["last_exit"], "exited with code 1");
    // Between crashes the instance is `starting` again: the table is read until it shows
    // the crash loop (it alternates; the restart backoff is the crash-looping window).
    wait_until(DEADLINE, || {
        let table = project.run(&["status"]);
        table
            .stdout
            .contains("crash-looping (exited with code 1)")
            .then_some(())
            .ok_or(table.to_string())
    })
    .expect("the table shows the crash loop and its last exit");
    project.down_and_assert_clean();
}

#[test]
fn a_service_that_never_becomes_healthy_fails_up_after_the_timeout() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.sleepy]
command = [{fixture}, "hang"]
health_check = { start_period = "100ms", interval = "100ms", liveness_threshold = 0 }
[services.after]
command = [{fixture}, "http"]
depends_on = ["sleepy"]
"#,
    );
    let began = Instant::now();
    let run = project.run(&["up", "--timeout", "2s"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(began.elapsed() >= Duration::from_secs(2));
    assert!(
        run.stderr
            .contains("`sleepy` did not become healthy: not healthy after 2s"),
        "{run}"
    );
    assert!(
        run.stderr.contains("`after` did not become healthy"),
        "{run}"
    );
    assert!(run.stderr.contains("waiting for its dependencies"), "{run}");
    // The dependent was never started.
    let after = project.instances("after");
    assert_eq!(after[0]["health"], "waiting", "{after:?}");
    assert!(after[0]["pid"].is_null());
    project.down_and_assert_clean();
}

#[test]
fn a_service_ignoring_sigterm_is_killed_after_the_stop_timeout() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.stubborn]
command = [{fixture}, "stubborn"]
stop = { timeout = "1s" }
"#,
    );
    project.up(&[]);
    let began = Instant::now();
    let run = project.run(&["down"]);
    assert_eq!(run.code, 0, "{run}");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "waited for the grace period: {took:?}"
    );
    assert!(project.processes().is_empty(), "{:?}", project.processes());
    let logs = project.run(&["logs", "stubborn"]);
    assert!(
        logs.stdout.contains("ignoring SIGTERM"),
        "the stop signal reached it: {logs}"
    );
}

#[test]
fn down_after_the_daemon_was_sigkilled_leaves_nothing() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.one]
command = [{fixture}, "http"]
[services.two]
run = "python3 -c 'import time; time.sleep(3600)' & exec python3 -c 'import time; time.sleep(3600)'"
health_check = { kind = "tcp", start_period = "0s" }
"#,
    );
    project.up(&["one"]);
    let status = project.status_json();
    let daemon = status["daemon_pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(DEADLINE, || {
        let alive = project
            .processes()
            .iter()
            .any(|(pid, _)| *pid as i32 == daemon);
        (!alive).then_some(()).ok_or(())
    })
    .expect("daemon gone");
    assert!(
        !project.processes().is_empty(),
        "services outlive the daemon"
    );
    let run = project.run(&["down"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("stopped 1 leftover instance"), "{run}");
    assert!(project.processes().is_empty(), "{:?}", project.processes());
    assert!(!project.file(".servio/state.json").exists());
}

#[test]
fn a_port_in_use_is_a_clear_error_naming_the_holder() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let project = Project::new(&format!(
        r#"
[admin]
port = 0

[services.web]
command = [{{fixture}}, "http"]
port = {port}
"#
    ));
    let run = project.run(&["up"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr
            .contains("services.toml:7:8: `services.web.port`"),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "port {port} is already in use by pid {}",
            std::process::id()
        )),
        "{run}"
    );
    assert!(project.processes().is_empty());
    drop(holder);
}

#[test]
fn another_process_answering_on_an_instance_s_port_does_not_make_it_healthy() {
    // A port can be picked by two stacks at the same moment; whichever binds second fails,
    // and the other stack's service then answers its probes. Here the instance never
    // listens and this test answers on its port instead.
    let port = servio::process::ports::pick_free_port(&|_| false);
    let project = Project::new(&format!(
        r#"
[admin]
port = 0
[services.impostor]
command = [{{fixture}}, "hang"]
port = {port}
health_check = {{ start_period = "100ms", interval = "100ms", liveness_threshold = 0 }}
"#
    ));
    let mut up = project
        .servio(&["up", "--timeout", "3s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("servio up");
    wait_until(DEADLINE, || {
        let spawned = project.file(".servio/control.sock").exists()
            && project
                .instances("impostor")
                .first()
                .is_some_and(|i| i["pid"].as_u64().is_some());
        spawned.then_some(()).ok_or(())
    })
    .expect("the instance was spawned");
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take its port");
    let answering = std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            use std::io::{Read, Write};
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let output = wait_until(DEADLINE, || up.try_wait().ok().flatten().ok_or(()))
        .map(|_| up.wait_with_output().expect("output"))
        .expect("up finished");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let log = std::fs::read_to_string(project.file(".servio/daemon.log")).unwrap_or_default();
    assert_eq!(output.status.code(), Some(1), "{stderr}\n{log}");
    assert!(
        stderr.contains("`impostor` did not become healthy"),
        "{stderr}"
    );
    assert_ne!(project.instances("impostor")[0]["health"], "healthy");
    project.down_and_assert_clean();
    drop(answering);
}
