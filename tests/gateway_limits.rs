//! What the gateway refuses, through the real binary and raw TCP: bodies past `max_body`
//! (413, declared or streamed), headers past 64 KiB (431), a slowloris client (closed while
//! others are served), and every trick to reach something no route names (dot segments,
//! encoded slashes, absolute-form targets, Host headers, CONNECT, `*`).

mod common;
mod gateway_support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{DEADLINE, Project};
use gateway_support::{agent, gateway_addr, get, raw, raw_status, send};

const MANIFEST: &str = r#"
[admin]
port = 0
[gateway]
port = 0
max_body = "1KiB"
header_read_timeout = "1s"
[[gateway.routes]]
prefix = "/echo"
service = "echo"
[[gateway.routes]]
prefix = "/hold"
service = "hold"
[services.echo]
command = [{fixture}, "headers"]
[services.hold]
command = [{fixture}, "slow", "60"]
"#;

#[test]
fn bodies_past_max_body_get_413_and_headers_past_64_kib_get_431() {
    let project = Project::new(MANIFEST);
    project.up(&[]);
    let addr = gateway_addr(&project);
    let client = agent();
    let url = format!("http://{addr}/echo/x");
    let fits = send(&client, "POST", &url, &[], Some(&[b'a'; 1024]));
    assert_eq!(fits.status, 200, "{fits:?}");
    assert_eq!(fits.json()["body"].as_str().map(str::len), Some(1024));

    // Declared too large: refused before a byte is read.
    let declared = send(&client, "POST", &url, &[], Some(&[b'a'; 1025]));
    assert_eq!(declared.status, 413, "{declared:?}");
    let error = &declared.json()["error"];
    assert_eq!(error["code"], "body_too_large");
    assert_eq!(error["details"]["service"], "echo");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1KiB"),
        "{declared:?}"
    );

    // Chunked, no length: counted while it streams to an instance that waits for it.
    let chunk = format!("400\r\n{}\r\n", "b".repeat(1024));
    let chunked = format!(
        "PUT /hold/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
{chunk}{chunk}0\r\n\r\n"
    );
    let answer = raw(addr, chunked.as_bytes());
    assert_eq!(raw_status(&answer), 413, "{answer}");
    assert!(answer.contains("\"body_too_large\""), "{answer}");

    // A 60 KiB header passes; 64 KiB of unfinished headers is refused.
    let big = "h".repeat(60 << 10);
    let ok = send(&client, "GET", &url, &[("x-big", big.as_str())], None);
    assert_eq!(ok.status, 200, "{}", ok.status);
    let mut huge = b"GET /echo/x HTTP/1.1\r\nHost: gw\r\nX-Huge: ".to_vec();
    huge.resize(64 << 10, b'h');
    let answer = raw(addr, &huge);
    assert_eq!(raw_status(&answer), 431, "{answer}");
    project.down_and_assert_clean();
}

#[test]
fn a_slowloris_connection_is_closed_while_others_are_served() {
    let project = Project::new(MANIFEST);
    project.up(&[]);
    let addr = gateway_addr(&project);
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let _ = stream.write_all(b"GET /echo/x HTTP/1.1\r\nHost: gw\r\n");
        let deadline = Instant::now() + DEADLINE;
        let mut line = 0;
        // One header line at a time, never finishing, until the gateway hangs up.
        while Instant::now() < deadline {
            line += 1;
            if stream
                .write_all(format!("X-{line}: a\r\n").as_bytes())
                .is_err()
            {
                return true;
            }
            let mut buffer = [0u8; 512];
            match stream.read(&mut buffer) {
                Ok(_) => return true,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    });
    for _ in 0..5 {
        let reply = get(&format!("http://{addr}/echo/meanwhile"));
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert!(
        slow.join().expect("slow client"),
        "the slow client was never cut off"
    );
    let reply = get(&format!("http://{addr}/echo/after"));
    assert_eq!(reply.status, 200, "{reply:?}");
    project.down_and_assert_clean();
}

#[test]
fn no_path_reaches_anything_a_route_does_not_name() {
    let project = Project::new(
        r#"
[admin]
port = 0
[gateway]
port = 0
[[gateway.routes]]
prefix = "/api/orders"
service = "orders"
strip_prefix = "/api"
[services.orders]
command = [{fixture}, "status", "200", "orders-hits"]
[services.secret]
command = [{fixture}, "status", "200", "secret-hits"]
"#,
    );
    project.up(&[]);
    let addr = gateway_addr(&project);
    let secret = project.instances("secret")[0]["port"]
        .as_u64()
        .expect("port");
    let admin = project
        .admin_url()
        .trim_start_matches("http://")
        .to_string();
    let host = format!("127.0.0.1:{secret}");
    let attempts = [
        ("GET /api/orders/../../secret HTTP/1.1", "gw"),
        ("GET /api/orders/%2e%2e/%2e%2e/secret HTTP/1.1", "gw"),
        ("GET /api/orders/%2E%2E%2Fsecret HTTP/1.1", "gw"),
        ("GET /api/orders/..%2f..%2fsecret HTTP/1.1", "gw"),
        ("GET /api/orders/..;/..;/secret HTTP/1.1", "gw"),
        ("GET /api/orders/.%2e/secret HTTP/1.1", "gw"),
        ("GET /api/orders\\..\\secret HTTP/1.1", "gw"),
        (&format!("GET http://{host}/x HTTP/1.1"), "gw"),
        (&format!("GET http://{admin}/metrics HTTP/1.1"), "gw"),
        (&format!("GET //{host}/x HTTP/1.1"), "gw"),
        ("GET /x HTTP/1.1", &host),
        ("GET /secret HTTP/1.1", "secret"),
        (&format!("CONNECT {host} HTTP/1.1"), &host),
        ("OPTIONS * HTTP/1.1", "gw"),
    ];
    for (line, host_header) in attempts {
        let request = format!("{line}\r\nHost: {host_header}\r\nConnection: close\r\n\r\n");
        let answer = raw(addr, request.as_bytes());
        let status = raw_status(&answer);
        assert!(
            status == 400 || status == 404,
            "{line} (Host: {host_header}) got {status}:\n{answer}"
        );
    }
    // A legitimate request with a Host naming the secret still only reaches its route.
    let request =
        format!("GET /api/orders/7 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(&raw(addr, request.as_bytes())), 200);

    assert!(
        !project.file("secret-hits").exists(),
        "the secret service was reached: {:?}",
        std::fs::read_to_string(project.file("secret-hits"))
    );
    let hits = std::fs::read_to_string(project.file("orders-hits")).unwrap_or_default();
    assert_eq!(hits, "orders-1 GET /orders/7\n");
    project.down_and_assert_clean();
}
