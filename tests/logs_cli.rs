//! `servio logs` as users run it: the real binary against a temp project whose
//! `.servio/logs/` files are written with the crate's own writer (or by hand, for fixed
//! timestamps). Covers output shapes, `-n`, `--since`, `-t`, unknown services, closed pipes
//! and `-f` across appends, rotation and late files.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use servio::logs::{ServiceLog, Stream, format_line};
use servio::manifest::LogPolicy;

const MANIFEST: &str = r#"
[services.web]
command = ["sleep", "1000"]
[services.api]
command = ["sleep", "1000"]
"#;

/// A temp folder holding services.toml.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("services.toml"), MANIFEST).unwrap();
        Project { dir }
    }

    fn log_path(&self, service: &str) -> PathBuf {
        self.dir.path().join(format!(".servio/logs/{service}.log"))
    }

    fn log(&self, service: &str, policy: LogPolicy) -> ServiceLog {
        ServiceLog::open(&self.log_path(service), policy).unwrap()
    }

    /// Appends lines with fixed times: (seconds after 2024-05-01T10:00:00Z, instance, text).
    fn write_at(&self, service: &str, lines: &[(u64, &str, &str)]) {
        let path = self.log_path(service);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut body = std::fs::read(&path).unwrap_or_default();
        for (secs, instance, message) in lines {
            let time = UNIX_EPOCH + Duration::from_secs(1_714_557_600 + secs);
            body.extend(format_line(time, instance, Stream::Out, message.as_bytes()));
        }
        std::fs::write(path, body).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_servio"));
        command
            .arg("logs")
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SERVIO_FILE")
            .env("NO_COLOR", "1");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn stdout(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "servio logs {args:?} failed: {stderr}"
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

#[test]
fn one_service_with_one_instance_prints_bare_messages() {
    let project = Project::new();
    let log = project.log("web", LogPolicy::default());
    log.append("web-1", Stream::Out, b"hello");
    log.append("web-1", Stream::Err, b"oops\r\nsecond line");
    assert_eq!(project.stdout(&["web"]), "hello\noops\nsecond line\n");
}

#[test]
fn several_services_are_merged_by_time_with_padded_prefixes() {
    let project = Project::new();
    project.write_at("web", &[(0, "web-1", "w0"), (2, "web-1", "w2")]);
    project.write_at("api", &[(1, "api-1", "a1"), (3, "api-12", "a3")]);
    let expected = "web-1  | w0\napi-1  | a1\nweb-1  | w2\napi-12 | a3\n";
    assert_eq!(project.stdout(&[]), expected);
    assert_eq!(project.stdout(&["web", "api"]), expected);
}

#[test]
fn one_service_with_two_instances_is_prefixed() {
    let project = Project::new();
    project.write_at("web", &[(0, "web-1", "a"), (1, "web-2", "b")]);
    assert_eq!(project.stdout(&["web"]), "web-1 | a\nweb-2 | b\n");
}

#[test]
fn tail_and_timestamps_apply_to_the_merged_output() {
    let project = Project::new();
    project.write_at("web", &[(0, "web-1", "w0"), (2, "web-1", "w2")]);
    project.write_at("api", &[(1, "api-1", "a1"), (3, "api-1", "a3")]);
    assert_eq!(project.stdout(&["-n", "2"]), "web-1 | w2\napi-1 | a3\n");
    assert_eq!(project.stdout(&["--tail", "0"]), "");
    assert_eq!(
        project.stdout(&["api", "-n", "1", "-t"]),
        "2024-05-01T10:00:03.000000Z a3\n"
    );
}

#[test]
fn since_keeps_only_recent_lines() {
    let project = Project::new();
    project.write_at("web", &[(0, "web-1", "old")]);
    project
        .log("web", LogPolicy::default())
        .append("web-1", Stream::Out, b"new");
    assert_eq!(project.stdout(&["web", "--since", "10m"]), "new\n");
    assert_eq!(project.stdout(&["--since", "10m"]), "web-1 | new\n");
    assert_eq!(project.stdout(&["web"]), "old\nnew\n");
}

#[test]
fn unknown_service_is_a_usage_error_listing_known_ones() {
    let project = Project::new();
    let output = project.run(&["web", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown service `nope`; known services: api, web"),
        "{stderr}"
    );
}

#[test]
fn missing_logs_and_other_folders_are_fine() {
    let project = Project::new();
    assert_eq!(project.stdout(&[]), "");
    project.write_at("api", &[(0, "api-1", "from elsewhere")]);
    let manifest = project.dir.path().join("services.toml");
    let elsewhere = tempfile::tempdir().unwrap();
    let output = project
        .command(&["--file", manifest.to_str().unwrap()])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    // Every service is shown, so lines are prefixed even though only api has any.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout, "api-1 | from elsewhere\n");
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let project = Project::new();
    let lines: Vec<(u64, &str, &str)> = (0..50_000).map(|i| (i, "web-1", "filler")).collect();
    project.write_at("web", &lines);
    let mut child = project
        .command(&["web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A running `servio logs -f`, killed when dropped; its stdout lines collected by a thread.
struct Following {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Following {
    fn start(project: &Project, args: &[&str]) -> Self {
        let mut child = project
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Following { child, lines }
    }

    /// The messages printed so far (prefixes removed).
    fn messages(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        let strip = |l: &String| {
            l.split_once(" | ")
                .map_or(l.clone(), |(_, m)| m.to_string())
        };
        lines.iter().map(strip).collect()
    }

    /// Waits until `expected` has been printed, in order, as the last messages.
    fn wait_for(&self, expected: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if messages.ends_with(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {expected:?}; got {messages:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn follow_prints_new_lines_across_rotation_and_late_files() {
    let project = Project::new();
    project.write_at("web", &[(0, "web-1", "before")]);
    let following = Following::start(&project, &["-f", "web", "api"]);
    following.wait_for(&["before".to_string()]);

    // Small files: these appends rotate web.log several times.
    let policy = LogPolicy {
        max_size: 300,
        max_files: 2,
    };
    let web = project.log("web", policy);
    let mut expected = vec!["before".to_string()];
    for i in 0..12 {
        let message = format!("web line {i}");
        web.append("web-1", Stream::Out, message.as_bytes());
        expected.push(message);
        // One rotation at most per poll: wait until the line is shown.
        following.wait_for(&expected[expected.len() - 1..]);
    }
    assert_eq!(following.messages(), expected);
    assert!(project.log_path("web").with_extension("log.2").exists());

    // api.log did not exist when following started.
    let api = project.log("api", LogPolicy::default());
    api.append("api-1", Stream::Err, b"api is up");
    following.wait_for(&["api is up".to_string()]);
}

#[test]
fn follow_ends_quietly_when_stdout_closes() {
    let project = Project::new();
    let mut child = project
        .command(&["-f", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let web = project.log("web", LogPolicy::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        web.append("web-1", Stream::Out, b"anyone there?");
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`servio logs -f` kept running with its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
