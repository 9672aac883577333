//! The registry through its admin API on a real daemon: discovery views, the blocking
//! watch, instances leaving at once when they exit, restarts, readiness and liveness, and
//! instances servio did not start (manifest `instances` and POST/DELETE).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{DEADLINE, Project, http_get, wait_until};
use serde_json::Value;

fn get_json(url: &str) -> (u16, Value) {
    let (code, body) = http_get(url);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fixture server servio did not start, killed on drop.
struct Outside(Child);

impl Outside {
    fn start(port: u16) -> Self {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/server.py");
        let child = Command::new("python3")
            .args([fixture, "http"])
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Outside(child)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn discovery_views_and_a_killed_instance_leaves_then_comes_back() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.menu]
version = "1.2.3"
command = [{fixture}, "http"]
replicas = 2
health_check = { interval = "200ms" }
restart = { backoff = "50ms" }
"#,
    );
    project.up(&[]);
    let admin = project.admin_url();

    let (code, all) = get_json(&format!("{admin}/v1/services"));
    assert_eq!(code, 200);
    assert_eq!(all["services"][0]["name"], "menu");
    let (code, view) = get_json(&format!("{admin}/v1/services/menu?healthy=true"));
    assert_eq!(code, 200);
    let instances = view["instances"].as_array().unwrap().clone();
    assert_eq!(instances.len(), 2);
    for instance in &instances {
        for field in [
            "id", "service", "version", "address", "port", "health", "pid", "since",
        ] {
            assert!(!instance[field].is_null(), "{field} in {instance}");
        }
        assert_eq!(instance["version"], "1.2.3");
        assert_eq!(instance["address"], "127.0.0.1");
    }
    let (code, missing) = get_json(&format!("{admin}/v1/services/nope"));
    assert_eq!(code, 404);
    assert_eq!(missing["error"]["code"], "service_not_found");

    // A watch blocks until the view changes: SIGKILL one instance and it returns without it.
    let index = view["index"].as_u64().unwrap();
    let victim = instances[0]["pid"].as_u64().unwrap() as i32;
    let victim_id = instances[0]["id"].as_str().unwrap().to_string();
    let watch_url = format!("{admin}/v1/services/menu?healthy=true&index={index}&wait=30s");
    let watcher = std::thread::spawn(move || get_json(&watch_url));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (code, changed) = watcher.join().unwrap();
    assert_eq!(code, 200);
    assert!(changed["index"].as_u64().unwrap() > index);
    let ids: Vec<&str> = changed["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&victim_id.as_str()), "{changed}");

    // ... and is restarted and healthy again.
    let back = wait_until(DEADLINE, || {
        let (_, view) = get_json(&format!("{admin}/v1/services/menu?healthy=true"));
        let instance = view["instances"]
            .as_array()
            .and_then(|list| list.iter().find(|i| i["id"] == victim_id.as_str()).cloned());
        instance.ok_or(view)
    })
    .expect("restarted instance healthy again");
    assert_ne!(back["pid"].as_u64().unwrap() as i32, victim);
    assert_eq!(back["restarts"], 1);
    assert_eq!(
        back["port"], instances[0]["port"],
        "keeps its port across restarts"
    );
    project.down_and_assert_clean();
}

#[test]
fn readiness_takes_an_instance_out_and_liveness_restarts_it() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.flaky]
command = [{fixture}, "sick", "sick.flag"]
health_check = { interval = "100ms", unhealthy_threshold = 2, liveness_threshold = 0 }
[services.doomed]
command = [{fixture}, "sick", "sick.flag"]
health_check = { interval = "100ms", unhealthy_threshold = 1, liveness_threshold = 5 }
restart = { backoff = "50ms" }
"#,
    );
    project.up(&[]);
    let admin = project.admin_url();
    std::fs::write(project.file("sick.flag"), "").unwrap();
    wait_until(DEADLINE, || {
        let (_, view) = get_json(&format!("{admin}/v1/services/flaky?healthy=true"));
        view["instances"]
            .as_array()
            .is_some_and(|l| l.is_empty())
            .then_some(())
            .ok_or(view)
    })
    .expect("unhealthy instance leaves the healthy view");
    assert_eq!(project.instances("flaky")[0]["health"], "unhealthy");
    let doomed = wait_until(DEADLINE, || {
        let instance = project.instances("doomed")[0].clone();
        (instance["restarts"].as_u64() >= Some(1))
            .then_some(instance.clone())
            .ok_or(instance)
    })
    .expect("liveness failure restarts the instance");
    assert!(
        doomed["last_exit"]
            .as_str()
            .unwrap()
            .contains("health checks"),
        "{doomed}"
    );
    std::fs::remove_file(project.file("sick.flag")).unwrap();
    wait_until(DEADLINE, || {
        let (_, view) = get_json(&format!("{admin}/v1/services/flaky?healthy=true"));
        (view["instances"].as_array().map(Vec::len) == Some(1))
            .then_some(())
            .ok_or(view)
    })
    .expect("recovered instance rejoins the healthy view");
    assert_eq!(
        project.instances("flaky")[0]["restarts"],
        0,
        "readiness alone never restarts"
    );
    project.down_and_assert_clean();
}

#[test]
fn instances_servio_did_not_start_are_probed_and_published() {
    let declared_port = free_port();
    let _declared = Outside::start(declared_port);
    let project = Project::new(&format!(
        r#"
[admin]
port = 0
[services.legacy]
instances = ["127.0.0.1:{declared_port}"]
health_check = {{ interval = "100ms" }}
"#
    ));
    project.up(&[]);
    let admin = project.admin_url();
    let (_, view) = get_json(&format!("{admin}/v1/services/legacy?healthy=true"));
    assert_eq!(view["instances"][0]["port"], declared_port);
    assert_eq!(view["instances"][0]["managed"], false);

    // Register one more through the API; it is probed like the others.
    let port = free_port();
    let outside = Outside::start(port);
    let auth = project.admin_auth();
    let mut response = agent()
        .post(format!("{admin}/v1/services/legacy/instances"))
        .header("authorization", &auth)
        .send_json(serde_json::json!({"port": port, "id": "legacy-extra"}))
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.body_mut().read_to_string().unwrap()
    );
    wait_until(DEADLINE, || {
        let (_, view) = get_json(&format!("{admin}/v1/services/legacy?healthy=true"));
        (view["instances"].as_array().map(Vec::len) == Some(2))
            .then_some(())
            .ok_or(view)
    })
    .expect("registered instance becomes healthy");

    // It goes unhealthy when it dies, and DELETE removes it.
    drop(outside);
    wait_until(DEADLINE, || {
        let (_, view) = get_json(&format!("{admin}/v1/services/legacy?healthy=true"));
        (view["instances"].as_array().map(Vec::len) == Some(1))
            .then_some(())
            .ok_or(view)
    })
    .expect("dead outside instance leaves the healthy view");
    let deleted = agent()
        .delete(format!("{admin}/v1/services/legacy/instances/legacy-extra"))
        .header("authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let again = agent()
        .delete(format!("{admin}/v1/services/legacy/instances/legacy-extra"))
        .header("authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(again.status(), 404);
    let (_, view) = get_json(&format!("{admin}/v1/services/legacy"));
    assert_eq!(view["instances"].as_array().unwrap().len(), 1);

    // Bad registrations are JSON errors.
    let bad = agent()
        .post(format!("{admin}/v1/services/legacy/instances"))
        .header("authorization", &auth)
        .content_type("application/json")
        .send("{\"port\": \"eighty\"}")
        .unwrap();
    assert_eq!(bad.status(), 422);
    project.down_and_assert_clean();
}

#[test]
fn managed_instances_cannot_be_deregistered_and_the_admin_api_is_loopback_only() {
    let project = Project::new(
        r#"
[admin]
port = 0
[services.menu]
command = [{fixture}, "http"]
"#,
    );
    project.up(&[]);
    let admin = project.admin_url();
    let response = agent()
        .delete(format!("{admin}/v1/services/menu/instances/menu-1"))
        .header("authorization", &project.admin_auth())
        .call()
        .unwrap();
    assert_eq!(response.status(), 409);
    assert!(admin.starts_with("http://127.0.0.1:"), "{admin}");
    let (code, metrics) = http_get(&format!("{admin}/metrics"));
    assert_eq!(code, 200);
    assert!(
        metrics.contains("servio_instances{service=\"menu\",health=\"healthy\"} 1"),
        "{metrics}"
    );
    project.down_and_assert_clean();
}
