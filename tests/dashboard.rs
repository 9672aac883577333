//! The web dashboard in a real browser: a stack of menu, inventory and order behind the
//! gateway, started by the real binary; `servio dashboard` gives the page's address, and
//! tests/browser/dashboard.py drives headless Chromium (Selenium, chromium-driver) through
//! it: services healthy, a SIGKILL shown, the restart button, the log pane, the order
//! route's chart. Needs chromium, chromium-driver and the Python venv that scripts/test
//! installs (target/pytools, from tests/python-requirements.txt).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, processes_under};

const MANIFEST: &str = r#"
[admin]
port = 0

[gateway]
port = 0

[[gateway.routes]]
prefix = "/api/orders"
service = "order-service"
strip_prefix = "/api"

[[gateway.routes]]
prefix = "/api/menu-items"
service = "menu-service"
strip_prefix = "/api"

[[gateway.routes]]
prefix = "/api/inventory"
service = "inventory-service"
strip_prefix = "/api"

[services.menu-service]
command = ["servio", "serve", "menu"]

[services.inventory-service]
command = ["servio", "serve", "inventory"]

[services.order-service]
command = ["servio", "serve", "order"]
depends_on = ["menu-service", "inventory-service"]
restart = { backoff = "50ms" }
"#;

/// The Python with Selenium: $SERVIO_BROWSER_PYTHON, or the venv scripts/test makes.
fn browser_python() -> PathBuf {
    match std::env::var_os("SERVIO_BROWSER_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pytools/bin/python"),
    }
}

#[test]
fn the_dashboard_shows_and_drives_a_live_stack() {
    let python = browser_python();
    assert!(
        python.exists() && Path::new("/usr/bin/chromedriver").exists(),
        "the browser test needs chromium, chromium-driver and {} (run scripts/test, which installs them)",
        python.display()
    );
    let project = Project::new(MANIFEST);
    project.up(&[]);
    let printed = project.run(&["dashboard"]);
    assert_eq!(printed.code, 0, "servio dashboard failed:\n{printed}");
    let url = printed.stdout.trim().to_string();
    assert!(
        url.contains("/#token="),
        "the token goes in the fragment: {url}"
    );
    let gateway = project.status_json()["gateway_url"]
        .as_str()
        .expect("gateway_url")
        .to_string();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let mut browser = Command::new(&python);
    browser
        .arg(&script)
        .env("DASHBOARD_URL", &url)
        .env("GATEWAY_URL", &gateway)
        .env("SERVIO_BIN", common::SERVIO)
        .current_dir(project.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = std::env::var_os("SERVIO_DASHBOARD_SCREENSHOT") {
        browser.env("SCREENSHOT", path);
    }
    let mut child = browser.spawn().expect("run the browser script");
    let deadline = Instant::now() + Duration::from_secs(240);
    while child.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().expect("try_wait").is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("browser script output");
    // Chromium runs in the project folder: whatever the script left is killed by the
    // Project guard, and noticed here.
    let run = common::Run::from(output);
    assert_eq!(run.code, 0, "the browser checks failed:\n{run}");
    project.down_and_assert_clean();
    assert!(processes_under(project.path()).is_empty());
}
