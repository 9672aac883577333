//! Fixtures for the services tests: the real `servio serve ...` binary on a free port with
//! its database in a temporary folder, a guard that kills it whatever happens, and a small
//! JSON HTTP client. Waits poll with a deadline; nothing sleeps a fixed time.

#![allow(dead_code)]

pub mod stack;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a service gets to become healthy, or a process to exit.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A port that was free a moment ago (bound to :0, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `check` every few milliseconds until it returns `Some` or `DEADLINE` passes.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One running service process; killed (SIGKILL) and reaped when dropped.
pub struct Service {
    pub kind: &'static str,
    pub port: u16,
    pub db_path: PathBuf,
    pub env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    /// Starts `servio serve <kind>` with its database at `dir/<kind>.db`, waits for health.
    pub fn start(kind: &'static str, dir: &Path) -> Service {
        Service::start_with(kind, dir, &[])
    }

    pub fn start_with(kind: &'static str, dir: &Path, env: &[(&str, &str)]) -> Service {
        let mut service = Service {
            kind,
            port: free_port(),
            db_path: dir.join(format!("{kind}.db")),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: dir.join(format!("{kind}.log")),
            child: None,
        };
        service.spawn();
        service
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let child = Command::new(env!("CARGO_BIN_EXE_servio"))
            .args(["serve", self.kind])
            .env("PORT", self.port.to_string())
            .env("SERVIO_DB_PATH", &self.db_path)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn servio");
        self.child = Some(child);
        let url = self.url("/health");
        eventually(&format!("{} to become healthy", self.kind), || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{} exited early ({status}):\n{}", self.kind, self.logs());
            }
            (get(&url).0 == 200).then_some(())
        });
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Sends `signal` without waiting.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid());
        nix::sys::signal::kill(pid, signal).expect("signal the service");
    }

    /// Waits for the process to exit; returns its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("service is running");
        eventually("the service to exit", || child.try_wait().ok().flatten())
    }

    /// Sends `signal` and waits for the process to exit; returns its exit status.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("service is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal the service");
        eventually("the service to exit", || child.try_wait().ok().flatten())
    }

    /// Starts the service again (after a stop) on the same port and database.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.kind);
        self.spawn();
    }

    /// SIGKILL, then start again on the same port and database.
    pub fn kill_and_restart(&mut self) {
        self.stop_with(nix::sys::signal::Signal::SIGKILL);
        self.spawn();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// Sends `method url` with an optional raw body and headers; returns status and JSON body
/// (`Value::Null` when the body is empty or not JSON; status 0 when no answer came).
pub fn send(
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    let has_type = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if body.is_some() && !has_type {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.unwrap_or_default()).expect("request");
    match agent().run(request) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

pub fn get(url: &str) -> (u16, Value) {
    send("GET", url, None, &[])
}

pub fn delete(url: &str) -> (u16, Value) {
    send("DELETE", url, None, &[])
}

/// `method url` with a JSON body.
pub fn json(method: &str, url: &str, body: &Value) -> (u16, Value) {
    send(method, url, Some(body.to_string().as_bytes()), &[])
}

/// Asserts `status` and, for errors, the `error.code` of an answer.
#[track_caller]
pub fn expect_error(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "wanted {status} {code}, got {answer:?}");
    assert_eq!(answer.1["error"]["code"], code, "{answer:?}");
    assert!(answer.1["error"]["message"].is_string(), "{answer:?}");
}

/// One row of a bad-input table: method, path, raw body, wanted status and error code.
pub type Case<'a> = (&'a str, String, Option<&'a [u8]>, u16, &'a str);

/// Sends every case to `service` and checks each answer's status and error code.
/// Anything with a base URL: a bare `serve` process or a supervised stack member.
pub trait Url {
    fn url(&self, path: &str) -> String;
}

impl Url for Service {
    fn url(&self, path: &str) -> String {
        Service::url(self, path)
    }
}

impl Url for stack::Member {
    fn url(&self, path: &str) -> String {
        stack::Member::url(self, path)
    }
}

#[track_caller]
pub fn check_cases(service: &impl Url, cases: &[Case<'_>]) {
    for (method, path, body, status, code) in cases {
        let answer = send(method, &service.url(path), *body, &[]);
        assert_eq!(answer.0, *status, "{method} {path}: {answer:?}");
        assert_eq!(
            answer.1["error"]["code"], *code,
            "{method} {path}: {answer:?}"
        );
    }
}
