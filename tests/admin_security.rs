//! The locked-down control plane through the real binary: admin API writes need the token,
//! foreign Host headers are refused (DNS rebinding), no CORS header is ever sent, a
//! service's environment appears on no surface, and the stack's files are private.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::Project;

/// Sends `request` (a whole HTTP/1.1 request) to `addr` and returns the raw answer.
fn raw(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn stack() -> Project {
    Project::new(
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
env = { SECRET_TOKEN = "hunter2-c0ffee-secret" }
"#,
    )
}

fn mode(project: &Project, file: &str) -> u32 {
    std::fs::metadata(project.file(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn admin_writes_need_the_token_and_foreign_hosts_are_refused() {
    let project = stack();
    project.up(&[]);
    let admin = project.admin_url();
    let addr = admin.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let token = std::fs::read_to_string(project.file(".servio/admin.token")).unwrap();
    assert_eq!(token.trim().len(), 64, "a long random token");
    assert_eq!(mode(&project, ".servio/admin.token"), 0o600);

    let register = |auth: &str| {
        let body = r#"{"port": 1, "id": "intruder"}"#;
        raw(
            &addr,
            &format!(
                "POST /v1/services/web/instances HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    for auth in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Basic eDp5\r\n",
    ] {
        let answer = register(auth);
        assert_eq!(status_of(&answer), 401, "{auth:?}: {answer}");
        assert!(answer.contains("\"code\":\"unauthorized\""), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{answer}"
        );
    }
    let delete = raw(
        &addr,
        &format!(
            "DELETE /v1/services/web/instances/web-1 HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status_of(&delete), 401, "{delete}");
    assert_eq!(project.instances("web").len(), 1, "nothing changed");
    let allowed = register(&format!("Authorization: Bearer {}\r\n", token.trim()));
    assert_eq!(status_of(&allowed), 201, "{allowed}");

    // DNS rebinding: the right address, a foreign name.
    for host in [
        "evil.example",
        "evil.example:80",
        &format!("127.0.0.1.nip.io:{port}"),
        "127.0.0.1",
    ] {
        let answer = raw(
            &addr,
            &format!("GET /v1/services HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status_of(&answer), 403, "{host}: {answer}");
        assert!(answer.contains("\"code\":\"foreign_host\""), "{answer}");
    }
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let answer = raw(
            &addr,
            &format!("GET /v1/services HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status_of(&answer), 200, "{host}: {answer}");
    }

    // No CORS, for a preflight or a read from a page.
    for request in [
        format!(
            "OPTIONS /v1/services HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "GET /v1/services HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n"
        ),
    ] {
        let answer = raw(&addr, &request);
        assert!(
            !answer.to_ascii_lowercase().contains("access-control-"),
            "{answer}"
        );
    }
    project.down_and_assert_clean();
    assert!(
        !project.file(".servio/admin.token").exists(),
        "removed by down"
    );
}

#[test]
fn a_service_s_environment_appears_on_no_surface_and_files_are_private() {
    let project = stack();
    let up = project.run(&["up", "--json"]);
    assert_eq!(up.code, 0, "{up}");
    let admin = project.admin_url();
    let gateway = project.status_json()["gateway_url"]
        .as_str()
        .unwrap()
        .to_string();
    let mut surfaces = vec![("up --json".to_string(), up.stdout.clone() + &up.stderr)];
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["config"],
        &["config", "--json"],
        &["up", "--dry-run", "--json"],
        &["restart", "--json"],
        &["logs", "web"],
    ] {
        let run = project.run(args);
        surfaces.push((args.join(" "), run.stdout + &run.stderr));
    }
    for path in ["/v1/services", "/v1/services/web", "/metrics"] {
        surfaces.push((
            path.to_string(),
            common::http_get(&format!("{admin}{path}")).1,
        ));
    }
    surfaces.push((
        "gateway".into(),
        common::http_get(&format!("{gateway}/web/x")).1,
    ));
    for file in [
        ".servio/daemon.log",
        ".servio/state.json",
        ".servio/logs/web.log",
    ] {
        surfaces.push((
            file.to_string(),
            std::fs::read_to_string(project.file(file)).unwrap_or_default(),
        ));
    }
    for (surface, text) in &surfaces {
        assert!(
            !text.is_empty() || surface == "logs web",
            "{surface} is empty"
        );
        assert!(
            !text.contains("hunter2"),
            "{surface} shows the secret:\n{text}"
        );
    }
    assert!(
        surfaces
            .iter()
            .any(|(s, t)| s == "config" && t.contains("SECRET_TOKEN")),
        "the key is named, its value redacted"
    );

    assert_eq!(mode(&project, ".servio"), 0o700);
    for file in [
        ".servio/control.sock",
        ".servio/state.json",
        ".servio/logs/web.log",
        ".servio/daemon.log",
    ] {
        assert_eq!(mode(&project, file) & 0o077, 0, "{file} is private");
    }
    project.down_and_assert_clean();
}
