//! The exported stack runs without servio's daemon. The test reads the Kubernetes YAML that
//! `servio export kubernetes` wrote and plays kubelet on this machine: for each Deployment a
//! "pod" (its own working folder, like the image's emptyDir) runs the init containers in
//! order, each to success, then the container, each with exactly the YAML's command and
//! environment (plain values, the Secret's values through envFrom, the pod name through the
//! downward API) and nothing inherited. Then an order placed through the order service
//! reserves stock.
//!
//! Kept faithful rather than rewritten: the SERVIO_ENDPOINTS_* values stay the Services'
//! DNS names (`menu-service:PORT`), and every process runs in its own mount namespace where
//! /etc/hosts maps each Service name to 127.0.0.1, so the service client resolves them
//! through the system resolver as it would through cluster DNS. Ports are the exported
//! ones: the manifest asks for free ports, and each Service's port is its container's port,
//! as on a cluster. The one substitution: the image's /usr/local/bin/servio is this build's
//! binary. Needs `unshare` and mount rights (root, as CI runs).

mod common;
mod services_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, SERVIO, processes_under, yaml_documents};
use serde_json::{Value, json};
use services_support::{free_port, get, json};

const IMAGE_BINARY: &str = "/usr/local/bin/servio";

/// Every process the test started; SIGKILLed and reaped when dropped, also on panic.
#[derive(Default)]
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A pod: its Deployment's containers, and where it runs.
struct Pod {
    name: String,
    dir: PathBuf,
    init: Vec<Value>,
    main: Value,
    /// Index into `Processes` of what runs now, and whether it is the main container.
    running: Option<(usize, bool)>,
    next_init: usize,
    env: BTreeMap<String, String>,
}

/// The container's environment as the kubelet would give it: the Secret's keys (envFrom)
/// first, then `env` (which wins), with `fieldRef: metadata.name` as the pod's name.
fn container_env(
    container: &Value,
    pod_name: &str,
    secrets: &BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let name = source["secretRef"]["name"].as_str().expect("secretRef");
        env.extend(secrets[name].clone());
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("env name").to_string();
        let value = match var.get("value") {
            Some(value) => value.as_str().expect("string value").to_string(),
            None => {
                assert_eq!(var["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
                pod_name.to_string()
            }
        };
        env.insert(name, value);
    }
    env
}

/// Starts `command` as the container would: in `dir`, with `env` only, in a mount namespace
/// whose /etc/hosts is `hosts`; the image's servio is this build's binary.
fn start(command: &Value, env: &BTreeMap<String, String>, dir: &Path, hosts: &Path) -> Child {
    let mut argv: Vec<String> = command
        .as_array()
        .expect("command list")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect();
    assert_eq!(
        argv[0], IMAGE_BINARY,
        "every container runs the image's servio"
    );
    argv[0] = SERVIO.to_string();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .expect("log file");
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#)
        .arg("sh")
        .arg(hosts)
        .args(&argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn unshare")
}

/// The readinessProbe of `container`, run from outside as the kubelet does.
fn ready(container: &Value) -> bool {
    let probe = &container["readinessProbe"]["httpGet"];
    let port_name = &probe["port"];
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| &p["name"] == port_name)
        .expect("the probe's named port")["containerPort"]
        .as_u64()
        .unwrap();
    let path = probe["path"].as_str().unwrap();
    get(&format!("http://127.0.0.1:{port}{path}")).0 == 200
}

fn manifest(menu: u16, inventory: u16, order: u16) -> String {
    format!(
        r#"
[project]
name = "shop"

[gateway]
[[gateway.routes]]
prefix = "/api/orders"
service = "order-service"
strip_prefix = "/api"

[services.menu-service]
command = ["servio", "serve", "menu"]
port = {menu}
env = {{ RUST_LOG = "info" }}

[services.inventory-service]
command = ["servio", "serve", "inventory"]
port = {inventory}
env = {{ RUST_LOG = "info" }}

[services.order-service]
command = ["servio", "serve", "order"]
port = {order}
env = {{ RUST_LOG = "info" }}
depends_on = ["menu-service", "inventory-service"]
"#
    )
}

#[test]
fn the_exported_stack_places_an_order_with_no_servio_daemon() {
    let (menu_port, inventory_port, order_port) = (free_port(), free_port(), free_port());
    let project = Project::new(&manifest(menu_port, inventory_port, order_port));
    let run = project.run(&["export", "kubernetes"]);
    assert_eq!(run.code, 0, "{run}");
    let documents = yaml_documents(&run.stdout);

    // Cluster DNS: every Service's name resolves to this machine.
    let services: Vec<&str> = documents
        .iter()
        .filter(|d| d["kind"] == "Service")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(services.len(), 3);
    let hosts = project.file("hosts");
    let mut table = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    for name in &services {
        table.push_str(&format!("\n127.0.0.1 {name}\n"));
    }
    std::fs::write(&hosts, table).expect("hosts file");
    use std::net::ToSocketAddrs;
    assert!(
        ("menu-service", menu_port).to_socket_addrs().is_err(),
        "outside the pods the names resolve nowhere: only the pods' /etc/hosts knows them"
    );

    let secrets: BTreeMap<String, BTreeMap<String, String>> = documents
        .iter()
        .filter(|d| d["kind"] == "Secret")
        .map(|d| {
            let data = d["stringData"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (d["metadata"]["name"].as_str().unwrap().to_string(), data)
        })
        .collect();

    let mut pods: Vec<Pod> = documents
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .map(|d| {
            let name = format!("{}-pod", d["metadata"]["name"].as_str().unwrap());
            let spec = &d["spec"]["template"]["spec"];
            let main = spec["containers"][0].clone();
            let dir = project.file(&format!("pods/{name}"));
            std::fs::create_dir_all(&dir).expect("pod folder");
            Pod {
                env: container_env(&main, &name, &secrets),
                init: spec["initContainers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                main,
                name,
                dir,
                running: None,
                next_init: 0,
            }
        })
        .collect();
    assert_eq!(pods.len(), 3);
    let order_env = &pods
        .iter()
        .find(|p| p.name == "order-service-pod")
        .unwrap()
        .env;
    assert_eq!(
        order_env["SERVIO_ENDPOINTS_MENU_SERVICE"],
        format!("menu-service:{menu_port}"),
        "DNS names, as the export wrote them"
    );
    assert!(!order_env.contains_key("SERVIO_ADMIN_URL"));

    // The kubelet's loop: init containers one by one, each to success, then the container.
    let mut processes = Processes::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut all_ready = true;
        for pod in &mut pods {
            match pod.running {
                Some((index, true)) => {
                    if let Some(status) = processes.0[index].try_wait().expect("try_wait") {
                        let log = std::fs::read_to_string(pod.dir.join("log")).unwrap_or_default();
                        panic!("{} exited ({status}):\n{log}", pod.name);
                    }
                    all_ready &= ready(&pod.main);
                    continue;
                }
                Some((index, false)) => {
                    all_ready = false;
                    match processes.0[index].try_wait().expect("try_wait") {
                        None => continue,
                        Some(status) if status.success() => pod.running = None,
                        Some(status) => {
                            let log =
                                std::fs::read_to_string(pod.dir.join("log")).unwrap_or_default();
                            panic!(
                                "an init container of {} failed ({status}):\n{log}",
                                pod.name
                            );
                        }
                    }
                }
                None => all_ready = false,
            }
            let (container, is_main) = match pod.init.get(pod.next_init) {
                Some(init) => (init.clone(), false),
                None => (pod.main.clone(), true),
            };
            if is_main && !pod.init.is_empty() {
                // The init containers passed: what they waited for answers now.
                assert_eq!(get(&format!("http://127.0.0.1:{menu_port}/health")).0, 200);
                assert_eq!(
                    get(&format!("http://127.0.0.1:{inventory_port}/health")).0,
                    200
                );
            }
            let env = if is_main {
                pod.env.clone()
            } else {
                container_env(&container, &pod.name, &secrets)
            };
            processes
                .0
                .push(start(&container["command"], &env, &pod.dir, &hosts));
            pod.running = Some((processes.0.len() - 1, is_main));
            pod.next_init += usize::from(!is_main);
        }
        if all_ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pods did not all become ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let order_pod = pods.iter().find(|p| p.name == "order-service-pod").unwrap();
    assert_eq!(
        order_pod.next_init, 2,
        "two dependencies, two init containers ran"
    );

    // An order through the order service, which finds menu and inventory by DNS.
    let menu = format!("http://127.0.0.1:{menu_port}");
    let inventory = format!("http://127.0.0.1:{inventory_port}");
    let (status, item) = json(
        "POST",
        &format!("{menu}/menu-items"),
        &json!({"venueId": "v1", "name": "Flat white", "priceCents": 450}),
    );
    assert_eq!(status, 201, "{item}");
    let id = item["id"].as_str().expect("item id");
    let (status, _) = json(
        "PUT",
        &format!("{inventory}/inventory/{id}"),
        &json!({"quantity": 10}),
    );
    assert_eq!(status, 200);
    let (status, order) = json(
        "POST",
        &format!("http://127.0.0.1:{order_port}/orders"),
        &json!({"venueId": "v1", "items": [{"menuItemId": id, "quantity": 2}]}),
    );
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["totalCents"], 900, "{order}");
    let (_, stock) = get(&format!("{inventory}/inventory/{id}"));
    assert_eq!(stock["quantity"], 8, "the order reserved 2 of 10: {stock}");

    // No daemon anywhere: no control socket, no registry, in any pod or the project.
    let sockets: Vec<PathBuf> = walk(project.path())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == "control.sock" || n == "daemon.pid")
        })
        .collect();
    assert!(sockets.is_empty(), "{sockets:?}");

    drop(processes);
    let left = processes_under(project.path());
    assert!(left.is_empty(), "left running: {left:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
