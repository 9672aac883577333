//! The gateway through the real binary: routing (longest prefix, segment boundaries,
//! strip_prefix, 404), routes following the manifest on `up`, spreading over instances
//! (least-request and round robin), the JSON errors 502/503/504, hop-by-hop and X-Forwarded-*
//! headers, and request ids.

mod common;
mod gateway_support;

use std::collections::BTreeMap;

use common::{DEADLINE, Project, http_get, wait_until};
use gateway_support::{agent, gateway_addr, get, raw, seen, send};

#[test]
fn routes_take_the_longest_prefix_on_segment_boundaries_and_strip_prefixes() {
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
[[gateway.routes]]
prefix = "/api"
service = "catchall"
[[gateway.routes]]
prefix = "/api/orders/special/"
service = "special"
[services.orders]
command = [{fixture}, "headers"]
[services.catchall]
command = [{fixture}, "headers"]
[services.special]
command = [{fixture}, "headers"]
"#,
    );
    project.up(&[]);
    let base = format!("http://{}", gateway_addr(&project));
    for (path, instance, upstream_path) in [
        ("/api/orders/7?x=1", "orders-1", "/orders/7?x=1"),
        ("/api/orders", "orders-1", "/orders"),
        ("/api/ordersX", "catchall-1", "/api/ordersX"),
        ("/api/orders/special", "special-1", "/api/orders/special"),
        (
            "/api/orders/special/9",
            "special-1",
            "/api/orders/special/9",
        ),
        ("/api/menu", "catchall-1", "/api/menu"),
    ] {
        let reply = get(&format!("{base}{path}"));
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        let echo = reply.json();
        assert_eq!(echo["instance"], instance, "{path}");
        assert_eq!(echo["path"], upstream_path, "{path}");
    }

    let posted = send(
        &agent(),
        "POST",
        &format!("{base}/api/orders"),
        &[("content-type", "text/plain")],
        Some(b"two words"),
    );
    assert_eq!(posted.json()["method"], "POST", "{posted:?}");
    assert_eq!(posted.json()["body"], "two words", "{posted:?}");

    for path in ["/nope", "/", "/apix", "/API/orders"] {
        let reply = get(&format!("{base}{path}"));
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "no_route", "{reply:?}");
        assert_eq!(error["message"], format!("no route for {path}"));
        assert_eq!(
            error["details"]["requestId"].as_str(),
            reply.header("x-request-id"),
            "{reply:?}"
        );
    }

    let health = get(&format!("{base}/health"));
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json()["service"], "servio-gateway");
    project.down_and_assert_clean();
}

#[test]
fn up_again_serves_the_routes_the_manifest_has_now() {
    let manifest = |routes: &str| {
        format!(
            "[admin]\nport = 0\n[gateway]\nport = 0\n{routes}\n\
[services.echo]\ncommand = [{{fixture}}, \"headers\"]\n"
        )
    };
    let project = Project::new(&manifest(
        "[[gateway.routes]]\nprefix = \"/kept\"\nservice = \"echo\"\n\
[[gateway.routes]]\nprefix = \"/old\"\nservice = \"echo\"\n",
    ));
    project.up(&[]);
    let addr = gateway_addr(&project);
    let status = |path: &str| get(&format!("http://{addr}{path}")).status;
    assert_eq!(
        [status("/kept/x"), status("/old/x"), status("/new/x")],
        [200, 200, 404]
    );

    project.write_manifest(&manifest(
        "[[gateway.routes]]\nprefix = \"/kept\"\nservice = \"echo\"\n\
[[gateway.routes]]\nprefix = \"/new\"\nservice = \"echo\"\nstrip_prefix = \"/new\"\n",
    ));
    project.up(&[]);
    assert_eq!(gateway_addr(&project), addr, "the gateway keeps its port");
    assert_eq!(
        [status("/kept/x"), status("/old/x"), status("/new/x")],
        [200, 404, 200]
    );
    let echoed = get(&format!("http://{addr}/new/x")).json();
    assert_eq!(echoed["path"], "/x", "the new route strips its prefix");

    // A route that stayed kept its counters; the removed one left /metrics.
    let (code, metrics) = http_get(&format!("{}/metrics", project.admin_url()));
    assert_eq!(code, 200);
    let kept = r#"servio_gateway_requests_total{route="/kept",service="echo",status="200"} 2"#;
    assert!(metrics.contains(kept), "{metrics}");
    assert!(!metrics.contains(r#"route="/old""#), "{metrics}");
    project.down_and_assert_clean();
}

#[test]
fn requests_spread_over_three_instances_and_round_robin_takes_turns() {
    let project = Project::new(
        r#"
[admin]
port = 0
[gateway]
port = 0
[[gateway.routes]]
prefix = "/p2c"
service = "p2c"
[[gateway.routes]]
prefix = "/rr"
service = "rr"
balance = "round_robin"
[services.p2c]
command = [{fixture}, "keepalive"]
replicas = 3
[services.rr]
command = [{fixture}, "keepalive"]
replicas = 3
"#,
    );
    project.up(&[]);
    let base = format!("http://{}", gateway_addr(&project));
    let client = agent();
    let count = |path: &str, n: usize| {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..n {
            let reply = send(&client, "GET", &format!("{base}{path}"), &[], None);
            assert_eq!(reply.status, 200, "{reply:?}");
            let instance = reply.body.split_whitespace().next().unwrap_or_default();
            *seen.entry(instance.to_string()).or_default() += 1;
        }
        seen
    };
    // Sequential requests leave every instance idle: two random choices, so all get some.
    let p2c = count("/p2c/x", 60);
    assert_eq!(
        p2c.keys().collect::<Vec<_>>(),
        ["p2c-1", "p2c-2", "p2c-3"],
        "{p2c:?}"
    );
    let rr = count("/rr/x", 30);
    assert_eq!(rr.values().collect::<Vec<_>>(), [&10, &10, &10], "{rr:?}");
    project.down_and_assert_clean();
}

#[test]
fn gateway_errors_are_json_naming_the_service_and_the_request_id() {
    let project = Project::new(
        r#"
[admin]
port = 0
[gateway]
port = 0
request_timeout = "2s"
[[gateway.routes]]
prefix = "/broken"
service = "broken"
[[gateway.routes]]
prefix = "/slow"
service = "slow"
[[gateway.routes]]
prefix = "/gone"
service = "gone"
[services.broken]
command = [{fixture}, "status", "0"]
replicas = 2
[services.slow]
command = [{fixture}, "slow", "60"]
[services.gone]
command = [{fixture}, "http"]
restart = { policy = "never" }
"#,
    );
    project.up(&[]);
    let base = format!("http://{}", gateway_addr(&project));
    let check = |path: &str, status: u16, code: &str, service: &str| {
        let reply = get(&format!("{base}{path}"));
        assert_eq!(reply.status, status, "{path}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let error = &reply.json()["error"];
        assert_eq!(error["code"], code, "{reply:?}");
        assert_eq!(error["details"]["service"], service, "{reply:?}");
        let id = reply.header("x-request-id").expect("a request id");
        assert_eq!(error["details"]["requestId"], id, "{reply:?}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains(service),
            "{reply:?}"
        );
        reply
    };
    // The instance closes the connection without answering: 502 (after a retry elsewhere).
    check("/broken/x", 502, "upstream_unavailable", "broken");
    // No answer within request_timeout: 504.
    check("/slow/x", 504, "upstream_timeout", "slow");

    // Every instance stopped: a fast 503 with Retry-After.
    assert_eq!(get(&format!("{base}/gone/x")).status, 200);
    let pid = project.instances("gone")[0]["pid"].as_u64().expect("pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    wait_until(DEADLINE, || {
        let health = project.instances("gone")[0]["health"].clone();
        (health == "exited").then_some(()).ok_or(health)
    })
    .expect("the instance exited");
    let reply = check("/gone/x", 503, "no_healthy_instance", "gone");
    assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
    project.down_and_assert_clean();
}

#[test]
fn hop_by_hop_headers_are_dropped_forwarded_headers_set_and_request_ids_travel() {
    let project = Project::new(
        r#"
[admin]
port = 0
[gateway]
port = 0
[[gateway.routes]]
prefix = "/echo"
service = "echo"
[services.echo]
command = [{fixture}, "headers"]
"#,
    );
    project.up(&[]);
    let addr = gateway_addr(&project);
    let answer = raw(
        addr,
        b"GET /echo/h HTTP/1.1\r\nHost: shop.example\r\nConnection: close, X-Secret\r\n\
X-Secret: hidden\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
Upgrade: something\r\nX-Forwarded-For: 203.0.113.7\r\nX-Request-Id: abc-123\r\n\
X-Kept: yes\r\n\r\n",
    );
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("x-request-id: abc-123"),
        "{head}"
    );
    let echo: serde_json::Value = serde_json::from_str(body).expect("the fixture's echo");
    for gone in [
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
    ] {
        assert_eq!(
            seen(&echo, gone),
            None,
            "{gone} reached the instance: {echo}"
        );
    }
    assert_ne!(
        seen(&echo, "connection").as_deref(),
        Some("close, X-Secret")
    );
    assert_eq!(seen(&echo, "x-kept").as_deref(), Some("yes"));
    assert_eq!(seen(&echo, "host").as_deref(), Some("shop.example"));
    assert_eq!(
        seen(&echo, "x-forwarded-host").as_deref(),
        Some("shop.example")
    );
    assert_eq!(seen(&echo, "x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        seen(&echo, "x-forwarded-for").as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(seen(&echo, "x-request-id").as_deref(), Some("abc-123"));

    // Without one, the gateway makes an id, sends it upstream and returns it.
    let reply = get(&format!("http://{addr}/echo/new"));
    let made = reply.header("x-request-id").expect("an id").to_string();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    assert_eq!(seen(&reply.json(), "x-request-id"), Some(made.clone()));
    assert_eq!(
        seen(&reply.json(), "x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );

    // Both ids are in the access log, one line per request.
    let log = project.file(".servio/daemon.log");
    wait_until(DEADLINE, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("servio::gateway::access"))
            .collect();
        let logged = |id: &str| {
            lines
                .iter()
                .any(|l| l.contains(&format!("request_id=\"{id}\"")))
        };
        (logged("abc-123") && logged(&made))
            .then_some(())
            .ok_or(text)
    })
    .expect("access log lines");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.contains("request_id=\"abc-123\""))
        .expect("the line");
    for part in [
        "method=GET",
        "path=/echo/h",
        "status=200",
        "service=\"echo\"",
        "instance=\"echo-1\"",
        "retries=0",
        "duration_ms=",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
    project.down_and_assert_clean();
}
