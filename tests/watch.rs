//! Watch mode and the live status through the real binary: a burst of edits under a watched
//! path restarts the service once (rolling, so the gateway keeps answering), ignored folders
//! never do, `status` shows `watching`; `status --watch` prints a new table when the stack
//! changes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::{DEADLINE, Project, kill9, wait_until};

/// The lines watch mode wrote into `service`'s log.
fn watch_restarts(project: &Project, service: &str) -> Vec<String> {
    let logs = project.run(&["logs", service]);
    logs.stdout
        .lines()
        .filter(|l| l.contains("changed: restarting"))
        .map(String::from)
        .collect()
}

#[test]
fn a_burst_of_edits_restarts_the_watching_service_once_and_ignored_folders_never() {
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
command = [{fixture}, "keepalive"]
watch = ["src/**"]
[services.other]
command = [{fixture}, "http"]
"#,
    );
    for folder in ["src/target", "target", ".git", "node_modules/m"] {
        std::fs::create_dir_all(project.file(folder)).unwrap();
    }
    project.up(&[]);
    let status = project.run(&["status"]);
    assert!(status.stdout.contains("web (watching)"), "{status}");
    assert!(!status.stdout.contains("other (watching)"), "{status}");
    assert_eq!(project.status_json()["services"][1]["watching"], true);
    let web = project.instances("web")[0]["pid"].as_u64().unwrap();
    let other = project.instances("other")[0]["pid"].as_u64().unwrap();

    // Requests through the gateway the whole time: the restart is a rolling one.
    let gateway = project.status_json()["gateway_url"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match common::http_get(&format!("{gateway}/web/x")) {
                    (200, _) => answered += 1,
                    other => failures.push(other),
                }
            }
            (answered, failures)
        })
    };

    // Ignored folders first, then a burst of real edits: had the ignored ones counted,
    // the restart would name one of them (the first change of a burst).
    for ignored in [
        "target/app",
        ".git/index",
        "node_modules/m/x.js",
        "src/target/y",
    ] {
        std::fs::write(project.file(ignored), "x").unwrap();
    }
    for i in 0..5 {
        std::fs::write(project.file(&format!("src/file{i}.txt")), "edit").unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let restarted = wait_until(DEADLINE, || {
        let instances = project.instances("web");
        let pid = instances[0]["pid"].as_u64().unwrap_or(0);
        let healthy = instances.len() == 1 && instances[0]["health"] == "healthy";
        (healthy && pid != web && pid != 0)
            .then_some(pid)
            .ok_or(instances)
    })
    .expect("web restarted once the burst was over");
    assert_ne!(restarted, web);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, failures) = client.join().unwrap();
    assert!(
        answered > 0 && failures.is_empty(),
        "{answered} answered, failed: {failures:?}"
    );
    let lines = watch_restarts(&project, "web");
    assert_eq!(lines.len(), 1, "one restart for the burst: {lines:?}");
    assert!(lines[0].contains("src/file0.txt changed"), "{lines:?}");
    assert_eq!(
        project.instances("other")[0]["pid"].as_u64(),
        Some(other),
        "an unwatched service is left alone"
    );
    project.down_and_assert_clean();
}

#[test]
fn up_watch_watches_every_service_and_a_plain_up_stops_it() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.web]
command = [{fixture}, "http"]
"#,
    );
    project.up(&["--watch"]);
    assert_eq!(project.status_json()["services"][0]["watching"], true);
    let web = project.instances("web")[0]["pid"].as_u64().unwrap();
    std::fs::write(project.file("notes.txt"), "edit").unwrap();
    wait_until(DEADLINE, || {
        let pid = project.instances("web")[0]["pid"].as_u64().unwrap_or(0);
        (pid != web && pid != 0).then_some(()).ok_or(pid)
    })
    .expect("restarted on a change anywhere under its folder");
    assert_eq!(watch_restarts(&project, "web").len(), 1);
    project.up(&[]);
    assert_eq!(project.status_json()["services"][0]["watching"], false);
    project.down_and_assert_clean();
}

#[test]
fn status_watch_prints_the_stack_again_when_it_changes() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.web]
command = [{fixture}, "http"]
restart = { backoff = "10ms" }
"#,
    );
    project.up(&[]);
    let pid = project.instances("web")[0]["pid"].as_u64().unwrap();
    let mut child = project
        .servio(&["status", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("status --watch");
    let (lines, inbox) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |wanted: &dyn Fn(&str) -> bool| -> bool {
        let deadline = std::time::Instant::now() + DEADLINE;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match inbox.recv_timeout(left) {
                Ok(line) => {
                    let hit = wanted(&line);
                    seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    };
    let header = |l: &str| l.contains("INSTANCE") && l.contains("CPU") && l.contains("MEM");
    assert!(wait_for(&header), "a table with CPU and MEM columns");
    kill9(pid);
    let restarted =
        |l: &str| l.starts_with("web ") && l.contains("healthy") && !l.contains(&pid.to_string());
    let found = wait_for(&restarted);
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "the restart shows: {seen:#?}");
    project.down_and_assert_clean();
}
