//! Shared fixture for the integration tests: a temp project folder with a services.toml,
//! the real `servio` binary run in it, polling helpers with deadlines, and a guard that
//! stops the stack and asserts no process of the project is left behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SERVIO: &str = env!("CARGO_BIN_EXE_servio");

/// Generous: the suite must pass on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A temp folder holding `manifest` as services.toml. `{fixture}` in the manifest is
    /// replaced by the command prefix that runs tests/fixtures/server.py.
    pub fn new(manifest: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("servio-test-")
            .tempdir()
            .expect("tempdir");
        let project = Project { dir };
        project.write_manifest(manifest);
        project
    }

    pub fn write_manifest(&self, manifest: &str) {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server.py");
        let text = manifest.replace(
            "{fixture}",
            &format!("\"python3\", \"{}\"", fixture.display()),
        );
        std::fs::write(self.path().join("services.toml"), text).expect("write manifest");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// A `servio` command run in the project folder, without colour.
    pub fn servio(&self, args: &[&str]) -> Command {
        let mut command = Command::new(SERVIO);
        command
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("SERVIO_FILE")
            .stdin(Stdio::null());
        command
    }

    /// Runs `servio ARGS` to completion (killed after 90 s so a hang cannot stall the suite).
    pub fn run(&self, args: &[&str]) -> Run {
        let mut child = self
            .servio(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn servio");
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let output = child.wait_with_output().expect("servio output");
        Run::from(output)
    }

    /// `servio up ARGS`, asserting success.
    pub fn up(&self, args: &[&str]) -> Run {
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        assert_eq!(run.code, 0, "servio up failed:\n{run}");
        run
    }

    pub fn status_json(&self) -> serde_json::Value {
        let run = self.run(&["status", "--json"]);
        assert_eq!(run.code, 0, "status failed:\n{run}");
        serde_json::from_str(&run.stdout).expect("status --json is JSON")
    }

    /// The instances of `service` from `servio status --json`.
    pub fn instances(&self, service: &str) -> Vec<serde_json::Value> {
        let status = self.status_json();
        status["services"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == service)
            .and_then(|s| s["instances"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The pids of `service`'s running instances, sorted.
    pub fn pids(&self, service: &str) -> Vec<u64> {
        let mut pids: Vec<u64> = self
            .instances(service)
            .iter()
            .filter_map(|i| i["pid"].as_u64())
            .collect();
        pids.sort();
        pids
    }

    /// `Authorization: Bearer <token>` for admin API writes, from .servio/admin.token.
    pub fn admin_auth(&self) -> String {
        let token = std::fs::read_to_string(self.file(".servio/admin.token")).expect("admin.token");
        format!("Bearer {}", token.trim())
    }

    /// The admin API base URL, from status.
    pub fn admin_url(&self) -> String {
        self.status_json()["admin_url"]
            .as_str()
            .expect("admin_url")
            .to_string()
    }

    /// The daemon's pid, from .servio/daemon.pid.
    pub fn daemon_pid(&self) -> u32 {
        std::fs::read_to_string(self.file(".servio/daemon.pid"))
            .expect("daemon.pid")
            .trim()
            .parse()
            .expect("a pid in daemon.pid")
    }

    /// Processes (not zombies) whose working directory is inside the project folder.
    pub fn processes(&self) -> Vec<(u32, String)> {
        processes_under(self.path())
    }

    /// Stops the stack and asserts that nothing of it is left running.
    pub fn down_and_assert_clean(&self) {
        let run = self.run(&["down", "--timeout", "5s"]);
        assert_eq!(run.code, 0, "servio down failed:\n{run}");
        let left = wait_until(Duration::from_secs(10), || {
            let left = self.processes();
            left.is_empty().then_some(()).ok_or(left)
        });
        if let Err(left) = left {
            panic!("processes left after down: {left:?}");
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Best effort when a test failed half-way: never leave the stack running.
        if self.file(".servio").exists() {
            let _ = self.servio(&["down", "--timeout", "2s"]).output();
        }
        for (pid, _) in self.processes() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Processes whose cwd lies under `root` (zombies excluded).
pub fn processes_under(root: &Path) -> Vec<(u32, String)> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if !cwd.starts_with(&root) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .map(|i| stat[i + 1..].trim_start().starts_with('Z'))
            .unwrap_or(true);
        if !zombie {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, cmdline));
        }
    }
    found
}

/// What a process holds, from /proc: resident memory in kB (all of it, the anonymous part,
/// and the peak since start or since "5" was written to /proc/PID/clear_refs) and open files.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    pub rss_kb: u64,
    pub anon_kb: u64,
    pub peak_kb: u64,
    pub fds: u64,
}

pub fn footprint(pid: u32) -> Footprint {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
    };
    Footprint {
        rss_kb: kb("VmRSS"),
        anon_kb: kb("RssAnon"),
        peak_kb: kb("VmHWM"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| fds.count() as u64)
            .unwrap_or(0),
    }
}

/// SIGKILLs `pid` (an instance or the daemon), as a crash would.
pub fn kill9(pid: u64) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {pid}");
}

/// Polls `check` every 20 ms until it returns Ok or `limit` passes (then the last Err).
pub fn wait_until<T, E>(limit: Duration, mut check: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// GET `url`, returning (status, body); errors as status 0.
pub fn http_get(url: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    match agent.get(url).call() {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string().unwrap_or_default();
            (status, body)
        }
        Err(_) => (0, String::new()),
    }
}

/// Every document of a YAML stream, as JSON values (null documents dropped).
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    yaml_serde::Deserializer::from_str(text)
        .map(|document| {
            let value = yaml_serde::Value::deserialize(document)
                .unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"));
            serde_json::to_value(value).expect("YAML as JSON")
        })
        .filter(|value| !value.is_null())
        .collect()
}

/// A tool of the test venv that scripts/python-tools creates (target/pytools).
pub fn pytool(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/pytools/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/python-tools` (scripts/test does)",
        path.display()
    );
    path
}
