//! Resource bounds through the real binary: a service printing as fast as it can keeps its
//! log files within `max_size × (max_files + 1)`, the capture keeps up, the daemon's memory
//! stays bounded and the service keeps serving; and the daemon's memory and open files stay
//! flat through 100,000 proxied requests and 100 restarts (rolling and crashes).

mod common;
mod gateway_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{DEADLINE, Project, wait_until};

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
    let rss_kb = common::footprint(project.daemon_pid()).rss_kb;
    assert!(rss_kb < 100 * 1024, "daemon RSS {rss_kb} kB");
    assert_eq!(project.instances("web")[0]["health"], "healthy");
    project.down_and_assert_clean();
}

/// Two real menu services behind the gateway; a crashed instance comes back at once, as
/// often as it is killed (the default policy would back off and give up after five).
const MENU_STACK: &str = r#"
[admin]
port = 0
[gateway]
port = 0
[[gateway.routes]]
prefix = "/api/menu-items"
service = "menu"
strip_prefix = "/api"
[services.menu]
command = ["servio", "serve", "menu"]
replicas = 2
env = { RUST_LOG = "warn" }
restart = { policy = "always", max_restarts = 1000, within = "1s", backoff = "10ms", max_backoff = "10ms" }
"#;

/// Sends `count` GETs of `path` on one keep-alive connection, pipelined eight at a time;
/// returns the statuses other than 200 (a broken connection counts as 0 and is opened
/// again).
fn keep_alive_gets(addr: SocketAddr, path: &str, count: usize) -> Vec<u16> {
    const DEPTH: usize = 8;
    let batch = format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n").repeat(DEPTH);
    let connect = || {
        let stream = TcpStream::connect(addr).expect("connect to the gateway");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        BufReader::new(stream)
    };
    let mut reader = connect();
    let mut failed = Vec::new();
    for _ in 0..count.div_ceil(DEPTH) {
        let answered: std::io::Result<Vec<u16>> = reader
            .get_mut()
            .write_all(batch.as_bytes())
            .and_then(|()| (0..DEPTH).map(|_| read_answer(&mut reader)).collect());
        match answered {
            Ok(statuses) => failed.extend(statuses.into_iter().filter(|s| *s != 200)),
            Err(_) => {
                failed.push(0);
                reader = connect();
            }
        }
    }
    failed
}

/// One answer (head and Content-Length body) from a keep-alive connection: its status.
fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut line = String::new();
    let mut status = 0;
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if status == 0 {
            status = trimmed
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
        } else if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}

/// `total` GETs from four keep-alive clients at once, all answered 200.
fn proxied_load(addr: SocketAddr, path: &str, total: usize) {
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || keep_alive_gets(addr, &path, total / 4))
        })
        .collect();
    for client in clients {
        let failed = client.join().expect("load client");
        assert!(failed.is_empty(), "statuses other than 200: {failed:?}");
    }
}

/// Ten instance restarts: three rolling restarts (`servio restart menu`, each replacing
/// both instances, one at a time) and four SIGKILLed instances, each waited for until both
/// instances are healthy again.
fn ten_restarts(project: &Project) {
    for _ in 0..3 {
        let run = project.run(&["restart", "menu", "-q"]);
        assert_eq!(run.code, 0, "servio restart failed:\n{run}");
    }
    for _ in 0..4 {
        let before = project.pids("menu");
        common::kill9(before[0]);
        wait_until(DEADLINE, || {
            let instances = project.instances("menu");
            let pids: Vec<u64> = instances.iter().filter_map(|i| i["pid"].as_u64()).collect();
            let healthy = instances.iter().all(|i| i["health"] == "healthy");
            (healthy && pids.len() == 2 && !pids.contains(&before[0]))
                .then_some(())
                .ok_or(instances)
        })
        .expect("the killed instance is back and healthy");
    }
}

/// True when `end` is within 10 % of `start`, or within `slack` of it.
fn flat(start: u64, end: u64, slack: u64) -> bool {
    start.abs_diff(end) <= (start / 10).max(slack)
}

#[test]
fn the_daemon_s_memory_and_open_files_stay_flat_through_100k_requests_and_100_restarts() {
    let project = Project::new(MENU_STACK);
    project.up(&[]);
    let addr = gateway_support::gateway_addr(&project);
    let created: serde_json::Value = ureq::post(&format!("http://{addr}/api/menu-items"))
        .send_json(serde_json::json!({"venueId": "v1", "name": "Flat white", "priceCents": 450}))
        .expect("create a menu item")
        .body_mut()
        .read_json()
        .expect("JSON");
    let path = format!("/api/menu-items/{}", created["id"].as_str().expect("id"));
    let daemon = project.daemon_pid();

    // A round: ten restarts, then 10,000 requests; measured at the same point of a round,
    // just after its load. The warm-up round takes every path once (allocator pages,
    // upstream pools, code pages) before the first measure.
    let round = || {
        ten_restarts(&project);
        proxied_load(addr, &path, 10_000);
    };
    round();
    let start = common::footprint(daemon);
    for _ in 0..10 {
        round();
    }
    let end = common::footprint(daemon);
    let figures = format!(
        "daemon after the warm-up: RSS {} kB (anonymous {} kB), {} open files; after 100,000 \
         more proxied requests and 100 more restarts: RSS {} kB (anonymous {} kB), {} open files",
        start.rss_kb, start.anon_kb, start.fds, end.rss_kb, end.anon_kb, end.fds
    );
    eprintln!("{figures}");
    // 10 %, or 1 MiB when that is more: a tokio blocking thread that comes and goes gets a
    // fresh allocator heap, a step of a few hundred KiB that is no leak; a debug daemon's
    // baseline is about 30 MB (16 MB anonymous), so the slack only matters for small ones.
    assert!(flat(start.rss_kb, end.rss_kb, 1024), "RSS: {figures}");
    assert!(
        flat(start.anon_kb, end.anon_kb, 1024),
        "anonymous RSS: {figures}"
    );
    // 10 %, or 4 files: pooled upstream connections (one per client at most, per instance
    // and worker) vary with how the last requests were spread.
    assert!(flat(start.fds, end.fds, 4), "open files: {figures}");
    project.down_and_assert_clean();
}

/// `THP_enabled` of `pid` (1: the process may get transparent huge pages).
fn huge_pages_allowed(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .map(|value| value.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn servio_declines_huge_pages_and_the_services_it_starts_get_the_setting_back() {
    let own = huge_pages_allowed(std::process::id());
    if own.is_empty() {
        eprintln!("this kernel does not report THP_enabled; nothing to check");
        return;
    }
    let project = Project::new(
        r#"
[admin]
port = 0
[services.web]
command = [{fixture}, "http"]
"#,
    );
    project.up(&[]);
    let daemon = project.daemon_pid();
    assert_eq!(
        huge_pages_allowed(daemon),
        "0",
        "the daemon allows huge pages"
    );
    // With huge pages each of its threads' first allocation took a 2 MiB page: 12 MiB.
    let anon_kb = common::footprint(daemon).anon_kb;
    assert!(
        anon_kb < 8 * 1024,
        "the daemon holds {anon_kb} kB of anonymous memory"
    );
    let web = project.pids("web")[0] as u32;
    assert_eq!(
        huge_pages_allowed(web),
        own,
        "a service got a huge-page setting other than the one servio was given"
    );
}
