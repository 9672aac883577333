//! `servio probe URL` and `servio wait-for URL --timeout T` through the real binary against
//! real sockets: the exit codes scripts, health checks and init containers rely on.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{Project, Run};

/// Answers every connection on `listener` with `status`, on a background thread.
fn answer_with(listener: TcpListener, status: &'static str) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
}

fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    (listener, port)
}

fn dead_port() -> u16 {
    listener().1
}

#[test]
fn probe_exit_codes() {
    let project = Project::new("");
    let (ok, ok_port) = listener();
    answer_with(ok, "200 OK");
    let (failing, failing_port) = listener();
    answer_with(failing, "503 Service Unavailable");
    let dead = dead_port();

    let run = project.run(&["probe", &format!("http://127.0.0.1:{ok_port}/health")]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("healthy"), "{run}");
    let run = project.run(&["probe", "-q", &format!("tcp://localhost:{ok_port}")]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run}");

    let run = project.run(&["probe", &format!("http://127.0.0.1:{failing_port}/health")]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("HTTP 503"), "{run}");
    let run = project.run(&["probe", &format!("http://127.0.0.1:{dead}/")]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("is not healthy: connect"), "{run}");
    let run = project.run(&["probe", "-q", &format!("tcp://127.0.0.1:{dead}")]);
    assert_eq!((run.code, run.stderr.as_str()), (1, ""), "{run}");

    let run = project.run(&["probe", "menu-service:3002"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("http://HOST:PORT/PATH"), "{run}");
}

#[test]
fn wait_for_returns_once_healthy_and_fails_after_the_timeout() {
    let project = Project::new("");
    let (listener, port) = listener();
    let healthy = Arc::new(AtomicBool::new(false));
    let probes = Arc::new(AtomicUsize::new(0));
    let (flag, seen) = (Arc::clone(&healthy), Arc::clone(&probes));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            seen.fetch_add(1, Ordering::SeqCst);
            let status = if flag.load(Ordering::SeqCst) {
                "200 OK"
            } else {
                "503 Starting"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let child = project
        .servio(&[
            "wait-for",
            &format!("http://127.0.0.1:{port}/health"),
            "--timeout",
            "60s",
            "--interval",
            "50ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wait-for");
    let mut guard = Guard(Some(child));
    // It keeps probing while the service says 503...
    common::wait_until(common::DEADLINE, || {
        (probes.load(Ordering::SeqCst) >= 3).then_some(()).ok_or(())
    })
    .expect("wait-for probes again and again");
    let child = guard.0.as_mut().expect("child");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still waiting"
    );
    // ...and returns once it is healthy.
    healthy.store(true, Ordering::SeqCst);
    let output = guard
        .0
        .take()
        .expect("child")
        .wait_with_output()
        .expect("wait");
    let run = Run::from(output);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("healthy: http://127.0.0.1:"), "{run}");

    let dead = dead_port();
    let run = project.run(&[
        "wait-for",
        &format!("tcp://127.0.0.1:{dead}"),
        "-t",
        "300ms",
    ]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("did not become healthy within 300ms (last probe: connect"),
        "{run}"
    );
    let run = project.run(&["wait-for", "http://h:1/"]);
    assert_eq!(run.code, 2, "--timeout is required: {run}");
}

/// Kills the child if the test fails before it is waited for.
struct Guard(Option<std::process::Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
