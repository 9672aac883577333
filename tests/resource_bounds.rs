//! Resource bounds through the real binary: a service printing as fast as it can keeps its
//! log files within `max_size × (max_files + 1)`, the capture keeps up, the daemon's memory
//! stays bounded and the service keeps serving.

mod common;

use common::Project;

#[test]
fn a_service_flooding_its_output_stays_within_the_log_budget_and_keeps_serving() {
    let project = Project::new(
        r#"
[admin]
port = 0
[logs]
max_size = "64KiB"
max_files = 2
[services.web]
command = [{fixture}, "flood"]
"#,
    );
    project.up(&[]);
    let logs = project.file(".servio/logs");
    // Rotated twice: the oldest kept file exists, so the budget is in force.
    common::wait_until(common::DEADLINE, || {
        logs.join("web.log.2").exists().then_some(()).ok_or(())
    })
    .expect("the log rotated twice");
    let last_line = || {
        let run = project.run(&["logs", "web", "-n", "1"]);
        run.stdout
            .split_whitespace()
            .skip_while(|w| *w != "line")
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let first = last_line();
    common::wait_until(common::DEADLINE, || {
        (last_line() > first + 10_000).then_some(()).ok_or(())
    })
    .expect("capture keeps up: ten thousand more lines arrive");
    let budget = 64 * 1024 * (2 + 1);
    let files: Vec<(String, u64)> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    assert!(total <= budget + 16 * 1024, "{total} bytes in {files:?}");
    assert!(!logs.join("web.log.3").exists(), "{files:?}");
    // The daemon's memory stays bounded and the service still answers its probes.
    let daemon: u32 = std::fs::read_to_string(project.file(".servio/daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{daemon}/status")).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(rss_kb < 100 * 1024, "daemon RSS {rss_kb} kB");
    assert_eq!(project.instances("web")[0]["health"], "healthy");
    project.down_and_assert_clean();
}
