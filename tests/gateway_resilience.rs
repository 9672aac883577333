//! The gateway when instances fail, through the real binary: an instance SIGKILLed under
//! load costs no GET, a failing instance is ejected by its breaker and readmitted after the
//! half-open probe (visible in `servio status` and /metrics), and only safe requests are
//! retried: a POST that reached an instance never is, a GET goes to another instance.

mod common;
mod gateway_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use common::{DEADLINE, Project, http_get, wait_until};
use gateway_support::{agent, gateway_addr, get, send};

#[test]
fn an_instance_killed_under_load_costs_no_get() {
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
replicas = 3
restart = { backoff = "200ms" }
"#,
    );
    project.up(&[]);
    let url = format!("http://{}/web/load", gateway_addr(&project));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // Three clients: the retry budget always allows at least three retries at once.
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (url, stop, done) = (url.clone(), stop.clone(), done.clone());
            thread::spawn(move || {
                let client = agent();
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let reply = send(&client, "GET", &url, &[], None);
                    if reply.status != 200 {
                        failures.push(reply);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();
    let at_least = |n: usize| {
        wait_until(DEADLINE, || {
            let count = done.load(Ordering::Relaxed);
            (count >= n).then_some(()).ok_or(count)
        })
        .expect("the clients make progress");
    };
    at_least(30);
    let victim = project.instances("web")[1].clone();
    let pid = victim["pid"].as_u64().expect("a pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let killed_at = done.load(Ordering::Relaxed);
    // Keep the load on until the instance is back, then a little longer.
    wait_until(DEADLINE, || {
        let again = &project.instances("web")[1];
        let back = again["restarts"].as_u64() >= Some(1) && again["health"] == "healthy";
        back.then_some(()).ok_or(again.clone())
    })
    .expect("the killed instance restarts");
    at_least(killed_at + 60);
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    assert!(failures.is_empty(), "failed GETs: {failures:?}");
    project.down_and_assert_clean();
}

#[test]
fn a_failing_instance_is_ejected_then_readmitted_after_the_probe() {
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
command = [{fixture}, "flaky", "fail-@"]
replicas = 2
"#,
    );
    project.up(&[]);
    let url = format!("http://{}/web/x", gateway_addr(&project));
    let metrics_url = format!("{}/metrics", project.admin_url());
    let fail = project.file("fail-web-1");
    std::fs::write(&fail, "").expect("make web-1 fail");

    // web-1 answers 503; every GET is retried on web-2, so the client never sees it.
    let client = agent();
    wait_until(DEADLINE, || {
        let reply = send(&client, "GET", &url, &[], None);
        assert_eq!(reply.status, 200, "{reply:?}");
        let breaker = project.instances("web")[0]["breaker"].clone();
        let open = breaker.as_str().is_some_and(|b| b.starts_with("open "));
        if open { Ok(()) } else { Err(breaker) }
    })
    .expect("web-1's breaker opens");
    assert!(project.instances("web")[1]["breaker"].is_null());
    let table = project.run(&["status"]);
    assert!(
        table.stdout.contains("healthy, breaker open ")
            || table.stdout.contains("healthy, breaker half-open"),
        "{table}"
    );
    let (_, metrics) = http_get(&metrics_url);
    for line in [
        "servio_gateway_ejections_total{service=\"web\",instance=\"web-1\"} 1",
        "servio_gateway_breaker_state{service=\"web\",instance=\"web-1\",state=\"closed\"} 0",
        "servio_gateway_breaker_state{service=\"web\",instance=\"web-2\",state=\"closed\"} 1",
        "servio_gateway_healthy_instances{service=\"web\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing in:\n{metrics}");
    }

    // Healed: once the penalty is over one request probes web-1, succeeds, and closes it.
    std::fs::remove_file(&fail).expect("heal web-1");
    wait_until(DEADLINE, || {
        let reply = send(&client, "GET", &url, &[], None);
        assert_eq!(reply.status, 200, "{reply:?}");
        let readmitted =
            reply.body.starts_with("web-1 ") && project.instances("web")[0]["breaker"].is_null();
        readmitted.then_some(()).ok_or(reply)
    })
    .expect("web-1 serves again");
    let (_, metrics) = http_get(&metrics_url);
    assert!(
        metrics.contains(
            "servio_gateway_breaker_state{service=\"web\",instance=\"web-1\",state=\"closed\"} 1"
        ),
        "{metrics}"
    );
    project.down_and_assert_clean();
}

#[test]
fn a_post_that_reached_an_instance_is_never_retried_a_get_is_elsewhere() {
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
command = [{fixture}, "status", "503", "hits"]
replicas = 2
"#,
    );
    project.up(&[]);
    let base = format!("http://{}/web", gateway_addr(&project));
    let hits = || -> Vec<String> {
        std::fs::read_to_string(project.file("hits"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    };
    let client = agent();
    for method in ["POST", "PATCH"] {
        let before = hits().len();
        let reply = send(&client, method, &format!("{base}/once"), &[], Some(b"{}"));
        assert_eq!(reply.status, 503, "the instance's own answer: {reply:?}");
        assert!(reply.body.ends_with(" 503\n"), "{reply:?}");
        assert_eq!(
            hits().len(),
            before + 1,
            "{method} sent twice: {:?}",
            hits()
        );
    }

    let before = hits().len();
    let reply = get(&format!("{base}/twice"));
    assert_eq!(reply.status, 503, "{reply:?}");
    let tried: Vec<String> = hits()[before..].to_vec();
    assert_eq!(tried.len(), 2, "one retry: {tried:?}");
    assert!(
        tried.iter().all(|hit| hit.ends_with("GET /web/twice")),
        "{tried:?}"
    );
    let instances: Vec<&str> = tried.iter().filter_map(|h| h.split(' ').next()).collect();
    assert_ne!(
        instances[0], instances[1],
        "the retry went elsewhere: {tried:?}"
    );
    project.down_and_assert_clean();
}
