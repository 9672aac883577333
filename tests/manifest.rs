//! The manifest through the real binary: `servio config` on broken manifests exits 2 and
//! names file:line:col and the key; on a valid one it prints every default with the
//! environment redacted; `servio init` writes the starter file once and never overwrites it.

use std::path::Path;
use std::process::{Command, Output};

const TEMPLATE: &str = include_str!("../templates/services.toml");

fn servio(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_servio"))
        .args(args)
        .current_dir(dir)
        .env_remove("SERVIO_FILE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run servio")
}

/// Writes `text` as services.toml in a fresh folder and runs `servio config -f` on it.
fn config(text: &str, extra: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("services.toml");
    std::fs::write(&path, text).expect("write manifest");
    let path = path.to_str().expect("utf-8 path").to_string();
    let mut args = vec!["config", "-f", path.as_str()];
    args.extend_from_slice(extra);
    let output = servio(dir.path(), &args);
    (dir, output)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const A: &str = "[services.a]\ncommand = [\"true\"]\n";

#[rustfmt::skip]
fn error_cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("syntax error", "[services.a\n".into(), "services.toml:1:12: "),
        ("unknown key", format!("{A}prots = 3002\n"), "services.toml:3:1: `services.a.prots`: unknown field `prots`"),
        ("wrong type", format!("{A}replicas = \"two\"\n"), "services.toml:3:12: `services.a.replicas`: invalid type"),
        ("unknown dependency", format!("{A}depends_on = [\"db\"]\n"), "services.toml:3:15: `services.a.depends_on`: unknown dependency `db`"),
        ("dependency cycle", format!("{A}depends_on = [\"b\"]\n[services.b]\nrun = \"x\"\ndepends_on = [\"a\"]\n"), "services.toml:3:15: `services.a.depends_on`: dependency cycle: a → b → a"),
        ("duplicate port", format!("{A}port = 4001\n[services.b]\nrun = \"x\"\nport = 4001\n"), "services.toml:6:8: `services.b.port`: port 4001 is already used by `a`"),
        ("bad duration", format!("{A}health_check = {{ interval = \"5x\" }}\n"), "services.toml:3:29: `services.a.health_check.interval`: invalid duration `5x`"),
        ("empty command", "[services.a]\ncommand = []\n".into(), "services.toml:2:11: `services.a.command`: empty command"),
        ("invalid name", "[services.Menu]\nrun = \"x\"\n".into(), "services.toml:1:11: `services.Menu`: invalid service name `Menu`"),
        ("route to unknown service", format!("[[gateway.routes]]\nprefix = \"/x\"\nservice = \"b\"\n{A}"), "services.toml:3:11: `gateway.routes[0].service`: route to unknown service `b`"),
        ("route prefix", format!("[[gateway.routes]]\nprefix = \"x\"\nservice = \"a\"\n{A}"), "services.toml:2:10: `gateway.routes[0].prefix`: prefix `x` does not start with '/'"),
        ("replicas 0", format!("{A}replicas = 0\n"), "services.toml:3:12: `services.a.replicas`: replicas must be at least 1"),
        ("bad signal", format!("{A}stop = {{ signal = \"SIGWHAT\" }}\n"), "services.toml:3:19: `services.a.stop.signal`: unknown signal `SIGWHAT`"),
        ("bad instance", "[services.a]\ninstances = [\"127.0.0.1\"]\n".into(), "services.toml:2:14: `services.a.instances`: invalid address `127.0.0.1`"),
    ]
}

#[test]
fn every_manifest_error_exits_2_and_names_line_column_and_key() {
    for (name, text, expected) in error_cases() {
        let (_dir, output) = config(&text, &[]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in:\n{err}"
        );
        assert!(err.contains("fix: "), "{name}: no fix in:\n{err}");
        assert!(
            stdout(&output).is_empty(),
            "{name}: printed a manifest anyway"
        );
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = format!(
        "{A}replicas = 0\n[services.b]\nrun = \"\"\n[services.c]\nrun = \"x\"\nport = \"x\"\n"
    );
    let (_dir, output) = config(&text, &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    for at in [
        "services.toml:3:12:",
        "services.toml:5:7:",
        "services.toml:8:8:",
    ] {
        assert!(err.contains(at), "{at} missing in:\n{err}");
    }
}

#[test]
fn a_missing_manifest_exits_2_and_says_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = servio(dir.path(), &["config", "-f", "nope.toml"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("nope.toml: no such manifest file"), "{err}");
    assert!(err.contains("servio init"), "{err}");
}

#[test]
fn config_prints_every_default_and_redacts_the_environment() {
    let text =
        "[services.api]\nrun = \"./api\"\nport = 4100\nenv = { DB_PASSWORD = \"hunter2\" }\n";
    let (dir, output) = config(text, &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for line in [
        "[services.api]",
        "command = [\"/bin/sh\", \"-c\", \"./api\"]",
        "port = 4100",
        "replicas = 1",
        "version = \"0.0.0\"",
        "DB_PASSWORD = \"<redacted>\"",
        "kind = \"http\"",
        "path = \"/health\"",
        "interval = \"2s\"",
        "start_period = \"30s\"",
        "unhealthy_threshold = 3",
        "liveness_threshold = 10",
        "policy = \"on-failure\"",
        "max_restarts = 5",
        "backoff = \"100ms\"",
        "signal = \"SIGTERM\"",
        "timeout = \"10s\"",
        "max_size = \"10MiB\"",
        "[admin]\nport = 2999",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }
    assert!(!out.contains("hunter2"), "a secret was printed:\n{out}");

    // The output is itself a valid manifest that resolves to the same thing.
    let again = dir.path().join("resolved.toml");
    std::fs::write(&again, &out).expect("write");
    let output = servio(
        dir.path(),
        &["config", "-f", again.to_str().expect("utf-8")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&stdout(&output)), strip(&out));
}

#[test]
fn config_json_is_json_and_redacted_too() {
    let text = "[services.api]\nrun = \"./api\"\nenv = { TOKEN = \"s3cret\" }\n";
    let (_dir, output) = config(text, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(!out.contains("s3cret"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let api = &json["services"]["api"];
    assert_eq!(api["env"]["TOKEN"], "<redacted>");
    assert_eq!(api["restart"]["within"], "1m");
    assert_eq!(json["gateway"]["port"], 3000);
}

#[test]
fn init_writes_the_starter_manifest_once_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("services.toml");
    let output = servio(dir.path(), &["init"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&path).expect("written"), TEMPLATE);
    assert!(stdout(&output).contains("servio up"), "{}", stdout(&output));

    // It is valid as written.
    let output = servio(dir.path(), &["config"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    std::fs::write(&path, "# mine\n").expect("edit");
    let output = servio(dir.path(), &["init"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("services.toml already exists; servio init never overwrites it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("still there"),
        "# mine\n"
    );
}

#[test]
fn config_finds_the_manifest_in_a_parent_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("services.toml"), A).expect("write");
    let nested = dir.path().join("src").join("deep");
    std::fs::create_dir_all(&nested).expect("mkdir");
    let output = servio(&nested, &["config"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("[services.a]"));
}
