//! Hostile clients on raw sockets to the gateway, through the real binary: garbage, request
//! smuggling (Content-Length against Transfer-Encoding and their disguises: a 400 and
//! nothing reaching an instance, as the instance's own record of what it received shows),
//! half-closed sockets (still answered), a client that pipelines and never reads (bounded
//! memory, dropped after the timeouts) and thousands of idle connections (others still
//! served). After each, the gateway, the services and the daemon keep serving, and nothing
//! panicked.

mod common;
mod gateway_support;

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{DEADLINE, Project, wait_until};
use gateway_support::{exchange, gateway_addr, get, raw_status};

/// `rec` records every request it receives in the project's `hits` file; `echo` answers
/// with the request it got, headers included.
const MANIFEST: &str = r#"
[admin]
port = 0
[gateway]
port = 0
header_read_timeout = "2s"
idle_timeout = "2s"
request_timeout = "5s"
[[gateway.routes]]
prefix = "/rec"
service = "rec"
[[gateway.routes]]
prefix = "/echo"
service = "echo"
[services.rec]
command = [{fixture}, "status", "200", "hits"]
[services.echo]
command = [{fixture}, "headers"]
"#;

/// What `rec` received, one "INSTANCE METHOD PATH" line per request.
fn hits(project: &Project) -> Vec<String> {
    std::fs::read_to_string(project.file("hits"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The gateway routes, every service is healthy, the daemon answers, and nothing panicked.
fn assert_still_serving(project: &Project, addr: SocketAddr) {
    for path in ["/rec/still-serving", "/echo/still-serving"] {
        let reply = get(&format!("http://{addr}{path}"));
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
    for service in ["rec", "echo"] {
        let instances = project.instances(service);
        assert_eq!(instances.len(), 1, "{service}: {instances:?}");
        assert_eq!(
            instances[0]["health"], "healthy",
            "{service}: {instances:?}"
        );
    }
    let log = std::fs::read_to_string(project.file(".servio/daemon.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
}

#[test]
fn garbage_gets_a_400_or_a_closed_connection_and_everything_keeps_serving() {
    let project = Project::new(MANIFEST);
    project.up(&[]);
    let addr = gateway_addr(&project);
    let named: [(&str, &[u8]); 10] = [
        ("binary", b"\x00\x01\x02\xff\xfe\x80\r\n\r\n"),
        ("no version", b"GET /rec/x\r\n\r\n"),
        ("HTTP/9", b"GET /rec/x HTTP/9.1\r\nHost: gw\r\n\r\n"),
        (
            "space in a field name",
            b"GET /rec/x HTTP/1.1\r\nHost: gw\r\nBad Name: a\r\n\r\n",
        ),
        (
            "NUL in a value",
            b"GET /rec/x HTTP/1.1\r\nHost: gw\r\nX: a\x00b\r\n\r\n",
        ),
        ("bare CR", b"GET /rec/x HTTP/1.1\r\nHost: gw\rX: a\r\n\r\n"),
        (
            "folded field",
            b"GET /rec/x HTTP/1.1\r\nHost: gw\r\nX: a\r\n b\r\n\r\n",
        ),
        (
            "control byte in the target",
            b"GET /rec/\x01 HTTP/1.1\r\nHost: gw\r\n\r\n",
        ),
        (
            "method with a slash",
            b"G/ET /rec/x HTTP/1.1\r\nHost: gw\r\n\r\n",
        ),
        (
            "TLS hello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ),
    ];
    for (what, bytes) in named {
        let got = exchange(addr, bytes, false);
        assert_eq!(raw_status(&got.answer), 400, "{what}: {got:?}");
        assert!(got.answer.contains("\"error\""), "{what}: {got:?}");
        assert!(got.closed, "{what}: the connection stayed open");
    }
    // An HTTP/2 preface followed by junk frames: hyper ends the connection.
    let h2 = exchange(
        addr,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        false,
    );
    assert!(h2.closed, "{h2:?}");

    // Random bytes, alone or after a valid request line, four clients at a time: each
    // gets an HTTP answer or a closed connection, never a gateway error of its own.
    let threads: Vec<_> = (0..4u64)
        .map(|seed| {
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed);
                for _ in 0..75 {
                    let mut bytes = if rng.bool() {
                        b"GET /rec/fuzz HTTP/1.1\r\n".to_vec()
                    } else {
                        Vec::new()
                    };
                    let len = rng.usize(1..4096);
                    bytes.extend((0..len).map(|_| rng.u8(..)));
                    let got = exchange(addr, &bytes, true);
                    assert!(got.closed, "{bytes:?} left the connection open: {got:?}");
                    let status = raw_status(&got.answer);
                    assert!(
                        got.answer.is_empty() || (400..500).contains(&status),
                        "{bytes:?} got {got:?}"
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("fuzzing client");
    }
    assert!(
        hits(&project).is_empty(),
        "garbage reached rec: {:?}",
        hits(&project)
    );
    assert_still_serving(&project, addr);
    project.down_and_assert_clean();
}

#[test]
fn ambiguous_framing_gets_a_400_and_nothing_is_smuggled_to_an_instance() {
    let project = Project::new(MANIFEST);
    project.up(&[]);
    let addr = gateway_addr(&project);
    let smuggled = "GET /rec/SMUGGLED HTTP/1.1\r\nHost: gw\r\n\r\n";
    // Each declares a body that, read one way, ends early, leaving `smuggled` to be taken
    // for a second request; read the other way, it holds it.
    let attempts = [
        // CL.TE: the gateway counting by length would pass the lot on.
        format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
            5 + smuggled.len()
        ),
        // TE.CL: an instance counting by length would stop after 4 bytes.
        format!(
            "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
            smuggled.len()
        ),
        format!("Content-Length: 0\r\nTransfer-Encoding: xchunked\r\n\r\n{smuggled}"),
        format!("Transfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n{smuggled}"),
        format!("Transfer-Encoding:\r\n chunked\r\nContent-Length: 0\r\n\r\n{smuggled}"),
        format!("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n{smuggled}"),
        format!("Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        format!("Content-Length: 0\r\nContent-Length: 40\r\n\r\n{smuggled}"),
        format!("Content-Length: +0\r\n\r\n{smuggled}"),
        format!("Content-Length: 0, 40\r\n\r\n{smuggled}"),
    ];
    for fields in &attempts {
        let request = format!("POST /rec/attempt HTTP/1.1\r\nHost: gw\r\n{fields}");
        let got = exchange(addr, request.as_bytes(), false);
        assert_eq!(raw_status(&got.answer), 400, "{request}\n---\n{got:?}");
        assert!(got.answer.contains("\"error\""), "{got:?}");
        assert!(got.closed, "{request}: the connection stayed open");
    }
    let old = format!(
        "POST /rec/attempt HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
    );
    let got = exchange(addr, old.as_bytes(), false);
    assert_eq!(raw_status(&got.answer), 400, "{got:?}");
    assert!(got.closed);
    assert_eq!(
        hits(&project),
        Vec::<String>::new(),
        "refused requests reached rec"
    );

    // A connection hyper serves already (after a chunked request): there Transfer-Encoding
    // wins and the connection closes after the answer; the rest is never read as a request.
    let first = "POST /rec/first HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n\
                 3\r\nabc\r\n0\r\n\r\n";
    let second = format!("POST /rec/second HTTP/1.1\r\nHost: gw\r\n{}", attempts[0]);
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(first.as_bytes()).expect("write");
    wait_until(DEADLINE, || {
        (hits(&project).len() == 1).then_some(()).ok_or(())
    })
    .expect("the first request arrives");
    let _ = stream.write_all(second.as_bytes());
    let mut answer = Vec::new();
    let closed = std::io::Read::read_to_end(&mut stream, &mut answer).is_ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed, "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 2, "{answer}");
    assert_eq!(
        hits(&project),
        ["rec-1 POST /rec/first", "rec-1 POST /rec/second"],
        "{answer}"
    );
    assert_still_serving(&project, addr);
    assert!(
        !hits(&project).iter().any(|hit| hit.contains("SMUGGLED")),
        "{:?}",
        hits(&project)
    );
    project.down_and_assert_clean();
}

#[test]
fn a_client_that_shuts_down_its_sending_side_still_gets_its_answers() {
    let project = Project::new(MANIFEST);
    project.up(&[]);
    let addr = gateway_addr(&project);
    let get = |path: &str| format!("GET /rec/{path} HTTP/1.1\r\nHost: gw\r\n\r\n");
    let cases = [
        ("one GET", get("one"), 1),
        (
            "three pipelined GETs",
            format!("{}{}{}", get("p1"), get("p2"), get("p3")),
            3,
        ),
        (
            "a POST with a length",
            "POST /rec/length HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc".to_string(),
            1,
        ),
        (
            "a chunked POST",
            "POST /rec/chunked HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n\
             3\r\nabc\r\n0\r\n\r\n"
                .to_string(),
            1,
        ),
        (
            "an HTTP/1.0 keep-alive GET",
            "GET /rec/old HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n".to_string(),
            1,
        ),
        (
            "a GET with Expect",
            "GET /rec/expect HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\n\
             Content-Length: 2\r\n\r\nhi"
                .to_string(),
            1,
        ),
    ];
    for (what, request, answers) in cases {
        let got = exchange(addr, request.as_bytes(), true);
        assert!(got.closed, "{what}: {got:?}");
        assert_eq!(
            got.answer.matches(" 200 OK\r\n").count(),
            answers,
            "{what}: {got:?}"
        );
    }
    assert_eq!(hits(&project).len(), 8, "{:?}", hits(&project));
    assert_still_serving(&project, addr);
    project.down_and_assert_clean();
}

#[test]
fn a_client_that_never_reads_is_dropped_without_the_gateway_growing_and_others_are_served() {
    let project = Project::new(MANIFEST);
    project.up(&[]);
    let addr = gateway_addr(&project);
    let daemon = project.daemon_pid();
    // Each answer echoes its request's 16 KiB header: socket buffers fill after a few
    // hundred, and then the gateway has to hold what it reads, or stop reading.
    let pad = "p".repeat(16 << 10);
    let request = format!("GET /echo/unread HTTP/1.1\r\nHost: gw\r\nX-Pad: {pad}\r\n\r\n");
    let agent = gateway_support::agent();
    for _ in 0..50 {
        let reply = gateway_support::send(
            &agent,
            "GET",
            &format!("http://{addr}/echo/warm-up"),
            &[("x-pad", &pad)],
            None,
        );
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    // From here the peak RSS (VmHWM) counts anew.
    std::fs::write(format!("/proc/{daemon}/clear_refs"), "5").expect("reset the peak RSS");
    let before = common::footprint(daemon).rss_kb;

    let stuck = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let greedy = {
        let (stuck, written) = (stuck.clone(), written.clone());
        std::thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream
                .set_write_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let batch = request.repeat(8);
            let deadline = Instant::now() + DEADLINE;
            while Instant::now() < deadline {
                match stream.write(batch.as_bytes()) {
                    Ok(n) => {
                        written.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        stuck.store(true, Ordering::Relaxed);
                    }
                    // Reset or broken pipe: the gateway dropped the connection.
                    Err(_) => return true,
                }
            }
            false
        })
    };
    wait_until(DEADLINE, || {
        stuck.load(Ordering::Relaxed).then_some(()).ok_or(())
    })
    .expect("the client's sending side fills up");
    for _ in 0..5 {
        let reply = get(&format!("http://{addr}/rec/meanwhile"));
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert!(
        greedy.join().expect("greedy client"),
        "the gateway never dropped a client that reads nothing"
    );
    let peak = common::footprint(daemon).peak_kb;
    let written_mib = written.load(Ordering::Relaxed) >> 20;
    // Kernel socket buffers hold what is in flight; the gateway holds one request and one
    // answer of it at a time (tens of KiB), whatever the client sends.
    assert!(
        peak < before + 16 * 1024,
        "daemon RSS peaked at {peak} kB from {before} kB while the client sent {written_mib} MiB"
    );
    assert_still_serving(&project, addr);
    project.down_and_assert_clean();
}

/// Idle connections the tests open; fewer when the hard open-file limit is lower.
const IDLE_WANTED: u64 = 10_000;

/// Raises this test's soft open-file limit to the hard one; returns how many idle
/// connections it can hold, and a note when that is fewer than [`IDLE_WANTED`].
fn idle_connections_possible() -> (u64, String) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raise the soft open-file limit");
    // Room for the test's own files, the daemon's and the services' beside the sockets.
    let possible = IDLE_WANTED.min(hard.saturating_sub(512));
    let note = if possible < IDLE_WANTED {
        format!(" (scaled down from {IDLE_WANTED}: the hard open-file limit is {hard})")
    } else {
        String::new()
    };
    if !note.is_empty() {
        eprintln!("{possible} idle connections{note}");
    }
    (possible, note)
}

/// `servio up`, the daemon starting with the usual soft open-file limit (1024) under
/// whatever hard limit there is, as on a default system.
fn up_with_the_usual_soft_limit(project: &Project) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use std::os::unix::process::CommandExt;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let mut command = project.servio(&["up"]);
    // SAFETY: setrlimit is a plain system call, allowed between fork and exec.
    unsafe {
        command.pre_exec(move || {
            setrlimit(Resource::RLIMIT_NOFILE, 1024.min(hard), hard).map_err(std::io::Error::from)
        });
    }
    let run = common::Run::from(command.output().expect("servio up"));
    assert_eq!(run.code, 0, "servio up failed:\n{run}");
}

/// The soft and hard "Max open files" of `pid`.
fn open_files_limit_of(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("Max open files");
    let mut values = line["Max open files".len()..].split_whitespace();
    let soft = values.next().unwrap_or_default().to_string();
    (soft, values.next().unwrap_or_default().to_string())
}

/// The gateway's `servio_gateway_connections` gauge, from the admin API's /metrics.
fn gateway_connections(project: &Project) -> u64 {
    let (status, metrics) = common::http_get(&format!("{}/metrics", project.admin_url()));
    assert_eq!(status, 200, "{metrics}");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("servio_gateway_connections "))
        .and_then(|value| value.trim().parse().ok())
        .expect("servio_gateway_connections in /metrics")
}

/// Opens `count` connections to `addr` that never send a byte.
fn open_idle(addr: SocketAddr, count: u64, note: &str) -> Vec<TcpStream> {
    (0..count)
        .map(|n| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap_or_else(|e| {
                panic!("idle connection {n} of {count}{note} could not connect: {e}")
            })
        })
        .collect()
}

/// A manifest where an idle connection keeps its slot for a minute unless made to give it
/// up, with `max_connections`.
fn idle_manifest(max_connections: u64) -> String {
    MANIFEST.replace(
        "header_read_timeout = \"2s\"\nidle_timeout = \"2s\"",
        &format!(
            "header_read_timeout = \"60s\"\nidle_timeout = \"60s\"\n\
             max_connections = {max_connections}"
        ),
    )
}

#[test]
fn past_max_connections_idle_connections_make_room_for_new_ones() {
    let (idle, note) = idle_connections_possible();
    // The default max_connections, or half the idle connections when fewer can be opened.
    let max = 4096.min(idle / 2);
    let project = Project::new(&idle_manifest(max));
    up_with_the_usual_soft_limit(&project);
    let addr = gateway_addr(&project);
    let daemon = project.daemon_pid();
    // The daemon raised its soft limit to the hard one; the services it starts do not
    // inherit that.
    let (soft, hard) = open_files_limit_of(daemon);
    assert_eq!(
        soft, hard,
        "the daemon kept a soft open-file limit of {soft}"
    );
    let rec = project.pids("rec")[0] as u32;
    let (soft, _) = open_files_limit_of(rec);
    assert_eq!(soft, 1024.min(hard.parse().unwrap_or(1024)).to_string());
    let before = common::footprint(daemon).rss_kb;

    let held = open_idle(addr, idle, &note);
    // Every slot is taken by a connection that sent nothing, held for a minute unless
    // made to give it up; more wait behind them.
    let open = gateway_connections(&project);
    assert!(
        open + 64 >= max,
        "{open} connections open of max_connections {max}{note}"
    );
    let rss = common::footprint(daemon).rss_kb;
    for n in 0..20 {
        let reply = get(&format!("http://{addr}/rec/meanwhile-{n}"));
        assert_eq!(
            reply.status, 200,
            "request {n} with {idle} idle connections{note}: {reply:?}"
        );
    }
    let open_now = gateway_connections(&project);
    assert!(
        open_now <= max,
        "{open_now} connections open, max_connections {max}"
    );
    let fds = common::footprint(daemon).fds;
    assert!(
        fds <= max + 256,
        "the daemon has {fds} files open with max_connections {max}"
    );
    // A connection that sent nothing holds no buffer: tokio's task and socket state only.
    let per_connection = (rss.saturating_sub(before) << 10) / open.max(1);
    assert!(
        per_connection < 8 << 10,
        "{per_connection} bytes per idle connection (RSS {before} kB, then {rss} kB with {open})"
    );
    drop(held);
    wait_until(DEADLINE, || {
        let open = gateway_connections(&project);
        (open == 0).then_some(()).ok_or(open)
    })
    .expect("the gateway lets go of closed connections");
    assert_still_serving(&project, addr);
    project.down_and_assert_clean();
}

#[test]
fn ten_thousand_idle_connections_are_held_while_others_are_served() {
    let (idle, note) = idle_connections_possible();
    let project = Project::new(&idle_manifest(idle + 100));
    up_with_the_usual_soft_limit(&project);
    let addr = gateway_addr(&project);
    let daemon = project.daemon_pid();
    let held = open_idle(addr, idle, &note);
    wait_until(DEADLINE, || {
        let open = gateway_connections(&project);
        (open >= idle).then_some(()).ok_or(open)
    })
    .unwrap_or_else(|open| panic!("the gateway holds {open} of {idle} idle connections{note}"));
    assert!(common::footprint(daemon).fds > idle, "{note}");
    for n in 0..20 {
        let reply = get(&format!("http://{addr}/rec/meanwhile-{n}"));
        assert_eq!(
            reply.status,
            200,
            "request {n} with {idle} idle connections{note} ({} open): {reply:?}",
            gateway_connections(&project)
        );
    }
    // Still held: serving others closed none of them.
    assert!(gateway_connections(&project) >= idle, "{note}");
    drop(held);
    assert_still_serving(&project, addr);
    project.down_and_assert_clean();
}
