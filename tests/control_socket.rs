//! Hostile input on the control socket: malformed, oversized, binary, wrong-version and
//! half-sent messages each get an error or a closed connection, never a crash or a stuck
//! daemon; `status` keeps answering after all of it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::Project;

/// Sends `bytes` on a new connection and returns the first answer line ("" when the daemon
/// closed the connection without one).
fn exchange(project: &Project, bytes: &[u8]) -> String {
    let mut stream = UnixStream::connect(project.file(".servio/control.sock")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The daemon may close early (oversized input): a failed write is an answer too.
    let _ = stream.write_all(bytes);
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line
}

#[test]
fn malformed_oversized_and_wrong_version_messages_get_errors_and_the_daemon_keeps_serving() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.web]
command = [{fixture}, "http"]
"#,
    );
    project.up(&[]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not JSON", b"hello\n".to_vec(), "bad request"),
        ("JSON of the wrong shape", b"{\"protocol\":2}\n".to_vec(), "bad request"),
        ("an unknown request", b"{\"protocol\":2,\"request\":{\"type\":\"explode\"}}\n".to_vec(), "bad request"),
        ("an unknown verb", b"{\"protocol\":2,\"request\":{\"type\":\"apply\",\"intent\":{\"verb\":\"nuke\"},\"dry_run\":false,\"timeout_ms\":1}}\n".to_vec(), "bad request"),
        ("another protocol version", b"{\"protocol\":999,\"request\":{\"type\":\"status\"}}\n".to_vec(), "protocol"),
        ("binary garbage", (0u8..=255).cycle().take(4096).chain([b'\n']).collect(), "bad request"),
        ("a number where a string goes", b"{\"protocol\":2,\"request\":{\"type\":\"apply\",\"intent\":{\"verb\":\"restart\",\"services\":[7]},\"dry_run\":true,\"timeout_ms\":1}}\n".to_vec(), "bad request"),
        ("an unknown service", b"{\"protocol\":2,\"request\":{\"type\":\"apply\",\"intent\":{\"verb\":\"restart\",\"services\":[\"../../etc\"]},\"dry_run\":true,\"timeout_ms\":1}}\n".to_vec(), "unknown service"),
    ];
    for (what, bytes, expected) in &cases {
        let answer = exchange(&project, bytes);
        assert!(answer.contains("\"type\":\"error\""), "{what}: {answer}");
        assert!(answer.contains(expected), "{what}: {answer}");
    }

    // Past the 1 MiB limit: an error or a closed connection, and no memory kept.
    let mut huge = vec![b'x'; 3 << 20];
    huge.push(b'\n');
    let answer = exchange(&project, &huge);
    assert!(
        answer.is_empty() || answer.contains("\"type\":\"error\""),
        "{answer}"
    );

    // Half a message, then the client goes away.
    {
        let mut stream = UnixStream::connect(project.file(".servio/control.sock")).unwrap();
        stream.write_all(b"{\"protocol\":2,\"requ").unwrap();
    }
    // A client that connects and never speaks does not block the others.
    let _idle = UnixStream::connect(project.file(".servio/control.sock")).unwrap();

    let status = project.run(&["status"]);
    assert_eq!(status.code, 0, "{status}");
    assert!(status.stdout.contains("healthy"), "{status}");
    project.down_and_assert_clean();
}
