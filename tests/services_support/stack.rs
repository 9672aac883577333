//! The whole platform for the order tests, run the way users run it: `servio up` on a
//! manifest of menu, inventory and order in a temporary project, so order finds its
//! dependencies through the real daemon's registry. `servio down` when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{eventually, get, json, send};

const SERVIO: &str = env!("CARGO_BIN_EXE_servio");

fn servio(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(SERVIO)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run servio")
}

/// The instances of `service` in `servio status --json`.
fn instances(dir: &std::path::Path, service: &str) -> Vec<Value> {
    let out = servio(dir, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == service)
        .and_then(|s| s["instances"].as_array().cloned())
        .unwrap_or_default()
}

/// One platform service as the supervisor runs it.
pub struct Member {
    pub name: &'static str,
    dir: PathBuf,
    pub port: u16,
    pub db_path: PathBuf,
}

impl Member {
    fn new(name: &'static str, dir: PathBuf) -> Member {
        let mut member = Member {
            name,
            db_path: dir.join(format!(".servio/data/{name}.db")),
            dir,
            port: 0,
        };
        member.port = member.healthy_instance()["port"].as_u64().unwrap() as u16;
        member
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn healthy_instance(&self) -> Value {
        eventually(&format!("{} healthy", self.name), || {
            instances(&self.dir, self.name)
                .into_iter()
                .find(|i| i["health"] == "healthy")
        })
    }

    fn pid(&self) -> i32 {
        self.healthy_instance()["pid"].as_u64().unwrap() as i32
    }

    /// Sends `signal` to the running instance and waits until the supervisor saw it end
    /// (the test manifest does not restart menu and inventory).
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
        eventually(&format!("{} down", self.name), || {
            let all = instances(&self.dir, self.name);
            all.iter().all(|i| i["pid"].is_null()).then_some(())
        });
    }

    /// `servio up NAME` after a stop: the supervisor starts it again.
    pub fn start_again(&mut self) {
        let out = servio(&self.dir, &["up", self.name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.port = self.healthy_instance()["port"].as_u64().unwrap() as u16;
    }

    /// SIGKILL, then wait for the supervisor's restart to be healthy on the same port.
    pub fn kill_and_restart(&mut self) {
        let before = self.pid();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(before),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        eventually(&format!("{} restarted", self.name), || {
            instances(&self.dir, self.name)
                .into_iter()
                .find(|i| i["health"] == "healthy" && i["pid"].as_i64() != Some(i64::from(before)))
        });
    }
}

/// The project folder; `servio down` when dropped, so a test that fails half-way through
/// start-up still leaves nothing running.
struct Project(tempfile::TempDir);

impl Drop for Project {
    fn drop(&mut self) {
        let _ = servio(self.0.path(), &["down", "--timeout", "5s"]);
    }
}

/// Menu, inventory and order, started by `servio up` in one temporary project.
pub struct Stack {
    pub menu: Member,
    pub inventory: Member,
    pub order: Member,
    _project: Project,
}

impl Stack {
    pub fn start() -> Stack {
        Stack::start_with(&[])
    }

    pub fn start_with(order_env: &[(&str, &str)]) -> Stack {
        let project = Project(
            tempfile::Builder::new()
                .prefix("servio-platform-")
                .tempdir()
                .unwrap(),
        );
        let dir = &project.0;
        let env: Vec<String> = order_env
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\""))
            .collect();
        let manifest = format!(
            r#"
[admin]
port = 0

[services.menu-service]
command = ["servio", "serve", "menu"]
restart = {{ policy = "never" }}

[services.inventory-service]
command = ["servio", "serve", "inventory"]
restart = {{ policy = "never" }}

[services.order-service]
command = ["servio", "serve", "order"]
depends_on = ["menu-service", "inventory-service"]
restart = {{ backoff = "50ms" }}
env = {{ {} }}
"#,
            env.join(", ")
        );
        std::fs::write(dir.path().join("services.toml"), manifest).unwrap();
        let out = servio(dir.path(), &["up"]);
        assert!(
            out.status.success(),
            "servio up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = dir.path().to_path_buf();
        Stack {
            menu: Member::new("menu-service", path.clone()),
            inventory: Member::new("inventory-service", path.clone()),
            order: Member::new("order-service", path),
            _project: project,
        }
    }

    /// A menu item of `venue` priced `cents` with `stock` units in inventory; its id.
    pub fn item(&self, venue: &str, name: &str, cents: i64, stock: i64) -> String {
        let (status, item) = json(
            "POST",
            &self.menu.url("/menu-items"),
            &json!({ "venueId": venue, "name": name, "priceCents": cents }),
        );
        assert_eq!(status, 201, "{item}");
        let id = item["id"].as_str().unwrap().to_string();
        let (status, body) = json(
            "PUT",
            &self.inventory.url(&format!("/inventory/{id}")),
            &json!({ "quantity": stock }),
        );
        assert_eq!(status, 200, "{body}");
        id
    }

    pub fn stock(&self, id: &str) -> i64 {
        get(&self.inventory.url(&format!("/inventory/{id}"))).1["quantity"]
            .as_i64()
            .unwrap()
    }

    pub fn place(&self, venue: &str, items: &[(&str, i64)], key: Option<&str>) -> (u16, Value) {
        let items: Vec<Value> = items
            .iter()
            .map(|(id, q)| json!({ "menuItemId": id, "quantity": q }))
            .collect();
        let body = json!({ "venueId": venue, "items": items }).to_string();
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        send(
            "POST",
            &self.order.url("/orders"),
            Some(body.as_bytes()),
            &headers,
        )
    }

    pub fn orders(&self, venue: &str) -> Vec<Value> {
        let (_, page) = get(&self.order.url(&format!("/orders?venueId={venue}")));
        page["items"].as_array().cloned().unwrap_or_default()
    }

    pub fn set_status(&self, id: &str, status: &str) -> (u16, Value) {
        json(
            "PATCH",
            &self.order.url(&format!("/orders/{id}")),
            &json!({ "status": status }),
        )
    }
}
