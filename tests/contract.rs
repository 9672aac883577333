//! The HTTP contracts, checked by a fuzzer: schemathesis (PyPI, pinned in
//! tests/python-requirements.txt) runs every check it has against the default
//! stack (services.toml, on free ports), through the gateway's merged /openapi.json and
//! straight against each service's own. Any failed check fails the test: a 5xx, a status
//! or a body the document does not list, a request the document allows but the service
//! refuses, or the other way round. Examples per operation are bounded so the whole test
//! stays around a minute.
//!
//! schemathesis comes from `$SERVIO_SCHEMATHESIS` (scripts/test installs it and exports
//! that), else from where scripts/test installs it; without it the test fails and says
//! how to get it.

mod common;
mod gateway_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, http_get};
use gateway_support::gateway_addr;

/// Examples per operation through the gateway, and straight to each service.
const GATEWAY_EXAMPLES: u32 = 20;
const SERVICE_EXAMPLES: u32 = 5;

/// A fixed seed: a failure is reproducible with the command the test prints. Set
/// `SERVIO_CONTRACT_SEED` to explore others.
const DEFAULT_SEED: u64 = 20261203;

/// One schemathesis run is killed past this, so a hang cannot stall the suite.
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// Where scripts/python-tools installs schemathesis.
const VENV: &str = "target/pytools";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The schemathesis executable, checked to run; a panic saying how to get it otherwise.
fn schemathesis() -> PathBuf {
    let installed = Some(repo(VENV).join("bin/schemathesis"));
    let found = std::env::var_os("SERVIO_SCHEMATHESIS")
        .map(PathBuf::from)
        .or(installed.filter(|path| path.exists()));
    let version = found.as_ref().and_then(|path| {
        let out = Command::new(path).arg("--version").output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    let (Some(path), Some(version)) = (found, version) else {
        panic!(
            "schemathesis is needed for the HTTP contract test and was not found \
             (SERVIO_SCHEMATHESIS is unset or does not run, and {VENV} has none).\n\
             `bash scripts/test` installs it and runs the suite; `bash scripts/python-tools`\n\
             installs just the test tools (into {VENV}, from tests/python-requirements.txt),\n\
             or set SERVIO_SCHEMATHESIS to a schemathesis executable."
        )
    };
    let pinned = std::fs::read_to_string(repo("tests/python-requirements.txt"))
        .expect("read the pinned requirements");
    let wanted = pinned
        .lines()
        .find_map(|line| line.trim().strip_prefix("schemathesis=="))
        .expect("schemathesis is pinned");
    if !version.ends_with(wanted) {
        eprintln!("warning: {version} runs, but {wanted} is pinned; results may differ");
    }
    path
}

/// The repository's services.toml, on ports nothing else uses: the default stack.
fn default_stack() -> String {
    let text = std::fs::read_to_string(repo("services.toml")).expect("read services.toml");
    let mut manifest: toml::Table = text.parse().expect("services.toml parses");
    for table in ["gateway", "admin"] {
        manifest[table]["port"] = toml::Value::Integer(0);
    }
    let services = manifest["services"]
        .as_table_mut()
        .expect("services.toml has services");
    for (_, service) in services.iter_mut() {
        if let Some(service) = service.as_table_mut() {
            service.remove("port");
        }
    }
    toml::to_string(&manifest).expect("the manifest serialises")
}

/// Runs schemathesis with every check against the document at `url`; its output on failure.
fn fuzz(tool: &Path, project: &Project, url: &str, examples: u32, name: &str) -> Fuzzed {
    let seed = std::env::var("SERVIO_CONTRACT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let config = repo("tests/fixtures/schemathesis.toml");
    let args = [
        "--no-color".to_string(),
        "--config-file".to_string(),
        config.display().to_string(),
        "run".to_string(),
        "--checks".to_string(),
        "all".to_string(),
        "--max-examples".to_string(),
        examples.to_string(),
        "--seed".to_string(),
        seed.to_string(),
        url.to_string(),
    ];
    let log = project.file(&format!("schemathesis-{name}.log"));
    let file = std::fs::File::create(&log).expect("create the log");
    // In the project folder: hypothesis keeps its database there, and the suite's
    // leftover check sees the process should it outlive the test.
    let mut child = Command::new(tool)
        .args(&args)
        .current_dir(project.path())
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone the log"))
        .stderr(file)
        .spawn()
        .expect("start schemathesis");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Fuzzed {
        command: format!("{} {}", tool.display(), args.join(" ")),
        passed: status.is_some_and(|s| s.success()),
        finished: status.is_some(),
        output: std::fs::read_to_string(&log).unwrap_or_default(),
    }
}

struct Fuzzed {
    command: String,
    passed: bool,
    finished: bool,
    output: String,
}

impl Fuzzed {
    /// Test cases run, from the summary ("1118 generated, ...").
    fn generated(&self) -> u64 {
        self.output
            .lines()
            .find_map(|line| line.trim().split_once(" generated, ")?.0.parse().ok())
            .unwrap_or(0)
    }

    #[track_caller]
    fn assert_clean(&self, at_least: u64) {
        let report = self
            .output
            .find("FAILURES")
            .map_or(self.output.as_str(), |start| &self.output[start..]);
        assert!(
            self.finished,
            "schemathesis did not finish within {RUN_LIMIT:?}\n{}",
            self.command
        );
        assert!(
            self.passed,
            "schemathesis found contract failures; reproduce with\n  {}\n\n{report}",
            self.command
        );
        assert!(
            self.generated() >= at_least,
            "schemathesis ran {} test cases, fewer than {at_least}:\n{}",
            self.generated(),
            self.output
        );
        eprintln!(
            "{} test cases, no failure: {}",
            self.generated(),
            self.command
        );
    }
}

#[test]
fn the_default_stack_keeps_its_documented_contracts() {
    let tool = schemathesis();
    let project = Project::new(&default_stack());
    project.up(&[]);
    let gateway = gateway_addr(&project);
    let url = format!("http://{gateway}/openapi.json");

    // The merged document covers every route, with nothing missing.
    let (status, body) = http_get(&url);
    assert_eq!(status, 200, "{body}");
    let document: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(document["x-servio-missing"], serde_json::json!([]));
    let paths: Vec<&String> = document["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .collect();
    for prefix in ["/api/orders", "/api/menu-items", "/api/inventory"] {
        assert!(
            paths.iter().any(|p| p.starts_with(prefix)),
            "{prefix}: {paths:?}"
        );
    }

    fuzz(&tool, &project, &url, GATEWAY_EXAMPLES, "gateway").assert_clean(500);

    // Straight to each service, side by side (they share nothing but the examples' ids).
    let services = ["menu-service", "inventory-service", "order-service"];
    let urls: Vec<String> = services
        .iter()
        .map(|service| {
            let port = project.instances(service)[0]["port"]
                .as_u64()
                .expect("a port");
            format!("http://127.0.0.1:{port}/openapi.json")
        })
        .collect();
    std::thread::scope(|scope| {
        let runs: Vec<_> = services
            .iter()
            .zip(&urls)
            .map(|(service, url)| {
                let (tool, project) = (&tool, &project);
                scope.spawn(move || fuzz(tool, project, url, SERVICE_EXAMPLES, service))
            })
            .collect();
        for run in runs {
            run.join().expect("a schemathesis run").assert_clean(100);
        }
    });
    project.down_and_assert_clean();
}
