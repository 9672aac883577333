//! `servio export kubernetes|compose|dockerfile` through the real binary: the output is read
//! back as YAML and each mapping from services.toml is checked object by object, and the
//! real validators judge it (kubernetes-validate --strict with its offline schemas; the
//! Compose Specification's JSON schema with `jsonschema`), both from scripts/python-tools.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Project, Run, pytool, yaml_documents};
use serde_json::{Value, json};

const BINARY: &str = "/usr/local/bin/servio";

/// A manifest that uses every key the export maps: replicas, sub-second and odd durations,
/// tcp checks, liveness 0, a non-servio command, no port, external instances of both
/// families and two ports, routes with and without strip_prefix, a stop signal and restart
/// policies Kubernetes cannot express, and an environment value hostile to YAML and compose.
const EVERY_KEY: &str = r#"
[project]
name = "Every Key"

[gateway]
port = 8000
[[gateway.routes]]
prefix = "/api/orders"
service = "web"
strip_prefix = "/api"
[[gateway.routes]]
prefix = "/static"
service = "web"
[[gateway.routes]]
prefix = "/legacy"
service = "legacy"
strip_prefix = "/legacy"

[services.web]
version = "2.0.0+build.7"
command = ["servio", "serve", "menu"]
port = 8081
replicas = 3
env = { RUST_LOG = "debug", GREETING = "a: b\n# no comment ${HOME} \"q\"" }
depends_on = ["cache", "legacy"]
health_check = { path = "/health?deep=1", interval = "500ms", timeout = "1500ms", start_period = "5s", unhealthy_threshold = 2, liveness_threshold = 4 }
restart = { policy = "never" }
stop = { signal = "SIGINT", timeout = "2500ms" }

[services.cache]
run = "exec python3 -m http.server $PORT"
health_check = { kind = "tcp", liveness_threshold = 0 }
restart = { policy = "always" }

[services.legacy]
instances = ["10.0.0.5:9000", "10.0.0.6:9000", "10.0.0.7:9100", "[fd00::5]:9000"]
health_check = { path = "/ping" }
"#;

const GREETING: &str = "a: b\n# no comment ${HOME} \"q\"";

/// Routes without strip_prefix: plain `Prefix` paths, no rewrite.
const PLAIN_ROUTES: &str = r#"
[gateway]
[[gateway.routes]]
prefix = "/api"
service = "api"
[[gateway.routes]]
prefix = "/"
service = "site"

[services.api]
command = ["servio", "serve", "order"]
port = 9001

[services.site]
command = ["servio", "serve", "menu"]
port = 9002
"#;

fn default_manifest() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/services.toml");
    std::fs::read_to_string(path).expect("templates/services.toml")
}

fn export(project: &Project, args: &[&str]) -> Run {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let run = project.run(&all);
    assert_eq!(run.code, 0, "servio export failed:\n{run}");
    run
}

/// The object of `kind` named `name`.
fn object<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {documents:#?}"))
}

fn count(documents: &[Value], kind: &str) -> usize {
    documents.iter().filter(|d| d["kind"] == kind).count()
}

/// `env` of a container as name → value (valueFrom entries as their JSON).
fn env(container: &Value) -> serde_json::Map<String, Value> {
    container["env"]
        .as_array()
        .expect("env list")
        .iter()
        .map(|e| {
            let value = e
                .get("value")
                .cloned()
                .unwrap_or_else(|| e["valueFrom"].clone());
            (e["name"].as_str().expect("name").to_string(), value)
        })
        .collect()
}

fn main_container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn deployments_carry_command_replicas_port_env_probes_and_stop_grace() {
    let project = Project::new(EVERY_KEY);
    let run = export(&project, &["kubernetes", "--image", "reg.example/servio:9"]);
    let documents = yaml_documents(&run.stdout);

    let web = object(&documents, "Deployment", "web");
    assert_eq!(web["spec"]["replicas"], 3);
    let labels = &web["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/name"], "web");
    assert_eq!(labels["app.kubernetes.io/part-of"], "every-key");
    assert!(
        labels.get("app.kubernetes.io/version").is_none(),
        "`+` is no label value"
    );
    for (key, value) in web["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[key], value, "the selector matches the pods");
    }
    let pod = &web["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 3, "2500ms rounds up");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = main_container(web);
    assert_eq!(container["image"], "reg.example/servio:9");
    assert_eq!(container["command"], json!([BINARY, "serve", "menu"]));
    assert_eq!(
        container["ports"],
        json!([{"name": "http", "containerPort": 8081, "protocol": "TCP"}])
    );
    let vars = env(container);
    assert_eq!(vars["PORT"], "8081");
    assert_eq!(vars["SERVIO_BIND"], "0.0.0.0");
    assert_eq!(vars["SERVIO_SERVICE"], "web");
    assert_eq!(vars["SERVIO_VERSION"], "2.0.0+build.7");
    assert_eq!(vars["SERVIO_ENDPOINTS_CACHE"], "cache:8080");
    assert_eq!(vars["SERVIO_ENDPOINTS_LEGACY"], "legacy:9000");
    assert_eq!(
        vars["SERVIO_INSTANCE"],
        json!({"fieldRef": {"fieldPath": "metadata.name"}})
    );
    assert!(
        !vars.contains_key("SERVIO_ADMIN_URL"),
        "no daemon out there"
    );
    assert!(
        !vars.contains_key("RUST_LOG") && !vars.contains_key("GREETING"),
        "the manifest's env never sits in the Deployment"
    );
    assert_eq!(
        container["envFrom"],
        json!([{"secretRef": {"name": "web-env"}}])
    );

    let http = json!({"path": "/health?deep=1", "port": "http"});
    assert_eq!(
        container["startupProbe"],
        json!({"httpGet": http, "periodSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 9}),
        "5s of start period, then 4 probes of 1s"
    );
    assert_eq!(
        container["readinessProbe"],
        json!({"httpGet": http, "periodSeconds": 1, "timeoutSeconds": 2, "successThreshold": 1,
               "failureThreshold": 2})
    );
    assert_eq!(
        container["livenessProbe"],
        json!({"httpGet": http, "periodSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 4})
    );
    assert_eq!(
        web["metadata"]["annotations"],
        json!({"servio-stop-signal": "SIGINT", "servio-restart-policy": "never"})
    );

    // A tcp check, liveness 0, no port, a shell command, restart always.
    let cache = object(&documents, "Deployment", "cache");
    let container = main_container(cache);
    assert_eq!(
        container["command"],
        json!(["/bin/sh", "-c", "exec python3 -m http.server $PORT"])
    );
    assert_eq!(container["ports"][0]["name"], "tcp");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(
        container["readinessProbe"]["tcpSocket"],
        json!({"port": "tcp"})
    );
    assert!(container.get("livenessProbe").is_none(), "liveness 0: none");
    assert!(
        container.get("startupProbe").is_none(),
        "nothing restarts it"
    );
    assert!(container.get("envFrom").is_none(), "no env, no Secret");
    assert!(cache["metadata"].get("annotations").is_none());
    assert_eq!(
        count(&documents, "Deployment"),
        2,
        "nothing runs for `legacy`"
    );

    assert!(
        run.stderr.contains("cache: its command is not `servio`"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("web: Kubernetes stops containers with SIGTERM, not SIGINT")
    );
}

#[test]
fn depends_on_becomes_init_containers_that_wait_for_health() {
    let project = Project::new(EVERY_KEY);
    let documents = yaml_documents(&export(&project, &["kubernetes"]).stdout);
    let pod = &object(&documents, "Deployment", "web")["spec"]["template"]["spec"];
    let init = pod["initContainers"].as_array().expect("init containers");
    let waits: Vec<(&Value, &Value, &Value)> = init
        .iter()
        .map(|c| (&c["name"], &c["image"], &c["command"]))
        .collect();
    let image = json!("servio:0.1.0");
    assert_eq!(
        waits,
        [
            (
                &json!("wait-for-cache"),
                &image,
                &json!([BINARY, "wait-for", "tcp://cache:8080", "--timeout", "60s"])
            ),
            (
                &json!("wait-for-legacy"),
                &image,
                &json!([
                    BINARY,
                    "wait-for",
                    "http://legacy:9000/ping",
                    "--timeout",
                    "60s"
                ])
            ),
        ]
    );
    let cache = &object(&documents, "Deployment", "cache")["spec"]["template"]["spec"];
    assert!(cache.get("initContainers").is_none());
}

#[test]
fn env_goes_into_one_secret_per_service() {
    let project = Project::new(EVERY_KEY);
    let documents = yaml_documents(&export(&project, &["kubernetes"]).stdout);
    let secret = object(&documents, "Secret", "web-env");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["stringData"],
        json!({"RUST_LOG": "debug", "GREETING": GREETING}),
        "the value comes back exactly, newline, '#', '$' and quotes included"
    );
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/name"],
        "web"
    );
    assert_eq!(count(&documents, "Secret"), 1, "only web has env");

    let documents = yaml_documents(&export(&project, &["kubernetes", "--no-secret-values"]).stdout);
    let secret = object(&documents, "Secret", "web-env");
    assert_eq!(
        secret["stringData"],
        json!({"RUST_LOG": "", "GREETING": ""})
    );
}

#[test]
fn services_and_external_instances() {
    let project = Project::new(EVERY_KEY);
    let documents = yaml_documents(&export(&project, &["kubernetes"]).stdout);
    let web = object(&documents, "Service", "web");
    assert_eq!(web["spec"]["type"], "ClusterIP");
    assert_eq!(
        web["spec"]["selector"],
        json!({"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "every-key"})
    );
    assert_eq!(
        web["spec"]["ports"],
        json!([{"name": "http", "port": 8081, "targetPort": "http", "protocol": "TCP"}])
    );

    let legacy = object(&documents, "Service", "legacy");
    assert!(
        legacy["spec"].get("selector").is_none(),
        "no pods: no selector"
    );
    assert_eq!(
        legacy["spec"]["ports"],
        json!([{"name": "http", "port": 9000, "protocol": "TCP"}])
    );
    let slices: Vec<(&Value, &Value, &Value, Vec<&Value>)> = documents
        .iter()
        .filter(|d| d["kind"] == "EndpointSlice")
        .map(|d| {
            assert_eq!(
                d["metadata"]["labels"]["kubernetes.io/service-name"],
                "legacy"
            );
            assert_eq!(d["ports"][0]["name"], "http");
            let addresses = d["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["addresses"][0])
                .collect();
            (
                &d["metadata"]["name"],
                &d["addressType"],
                &d["ports"][0]["port"],
                addresses,
            )
        })
        .collect();
    assert_eq!(
        slices,
        [
            (
                &json!("legacy-1"),
                &json!("IPv4"),
                &json!(9000),
                vec![&json!("10.0.0.5"), &json!("10.0.0.6")]
            ),
            (
                &json!("legacy-2"),
                &json!("IPv4"),
                &json!(9100),
                vec![&json!("10.0.0.7")]
            ),
            (
                &json!("legacy-3"),
                &json!("IPv6"),
                &json!(9000),
                vec![&json!("fd00::5")]
            ),
        ]
    );
}

#[test]
fn routes_become_an_ingress_or_an_httproute() {
    let project = Project::new(EVERY_KEY);
    let documents = yaml_documents(&export(&project, &["kubernetes"]).stdout);
    let ingress = object(&documents, "Ingress", "every-key-gateway");
    assert_eq!(
        ingress["metadata"]["annotations"],
        json!({"nginx.ingress.kubernetes.io/use-regex": "true",
               "nginx.ingress.kubernetes.io/rewrite-target": "/$1"})
    );
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    let paths: Vec<(&Value, &Value, &Value)> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["pathType"], "ImplementationSpecific");
            (
                &p["path"],
                &p["backend"]["service"]["name"],
                &p["backend"]["service"]["port"]["name"],
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            (
                &json!("/api/(orders(?:/.*)?)$"),
                &json!("web"),
                &json!("http")
            ),
            (&json!("/(static(?:/.*)?)$"), &json!("web"), &json!("http")),
            (
                &json!("/legacy(?:/(.*))?$"),
                &json!("legacy"),
                &json!("http")
            ),
        ]
    );
    assert_eq!(count(&documents, "HTTPRoute"), 0);

    let documents = yaml_documents(&export(&project, &["kubernetes", "--gateway-api"]).stdout);
    assert_eq!(count(&documents, "Ingress"), 0);
    let route = object(&documents, "HTTPRoute", "every-key-gateway");
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"name": "every-key-gateway"}])
    );
    let rewrite = |to: &str| {
        json!([{"type": "URLRewrite",
                "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": to}}}])
    };
    let rules: Vec<(&Value, Option<&Value>, &Value)> = route["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["matches"][0]["path"]["type"], "PathPrefix");
            (
                &r["matches"][0]["path"]["value"],
                r.get("filters"),
                &r["backendRefs"],
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (
                &json!("/api/orders"),
                Some(&rewrite("/orders")),
                &json!([{"name": "web", "port": 8081}])
            ),
            (
                &json!("/static"),
                None,
                &json!([{"name": "web", "port": 8081}])
            ),
            (
                &json!("/legacy"),
                Some(&rewrite("/")),
                &json!([{"name": "legacy", "port": 9000}])
            ),
        ]
    );

    // Without strip_prefix anywhere: Prefix paths (whole segments), no rewrite.
    let project = Project::new(PLAIN_ROUTES);
    let documents = yaml_documents(&export(&project, &["kubernetes"]).stdout);
    let ingress = documents
        .iter()
        .find(|d| d["kind"] == "Ingress")
        .expect("ingress");
    assert!(ingress["metadata"].get("annotations").is_none());
    let paths: Vec<(&Value, &Value)> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (&p["path"], &p["pathType"]))
        .collect();
    assert_eq!(
        paths,
        [
            (&json!("/api"), &json!("Prefix")),
            (&json!("/"), &json!("Prefix"))
        ]
    );
}

#[test]
fn a_namespace_holds_every_object_and_a_folder_gets_one_file_each() {
    let project = Project::new(EVERY_KEY);
    let documents =
        yaml_documents(&export(&project, &["kubernetes", "--namespace", "shop"]).stdout);
    assert_eq!(object(&documents, "Namespace", "shop")["apiVersion"], "v1");
    for document in documents.iter().filter(|d| d["kind"] != "Namespace") {
        assert_eq!(document["metadata"]["namespace"], "shop", "{document:#}");
    }

    let run = export(
        &project,
        &["kubernetes", "--namespace", "shop", "-o", "deploy"],
    );
    assert!(run.stdout.contains("kubectl apply -k deploy"), "{run}");
    let kustomization = std::fs::read_to_string(project.file("deploy/kustomization.yaml"))
        .expect("kustomization.yaml");
    let kustomization = &yaml_documents(&kustomization)[0];
    assert_eq!(kustomization["kind"], "Kustomization");
    assert_eq!(kustomization["namespace"], "shop");
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(project.file("deploy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "kustomization.yaml" && name != "Dockerfile")
        .collect();
    on_disk.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, on_disk, "every file listed, each once");
    assert_eq!(listed.len(), documents.len(), "one file per object");
    for file in &listed {
        let text = std::fs::read_to_string(project.file(&format!("deploy/{file}"))).unwrap();
        assert_eq!(yaml_documents(&text).len(), 1, "{file}");
    }
    assert!(project.file("deploy/Dockerfile").exists());

    let bad = project.run(&["export", "kubernetes", "--namespace", "Not_A_Label"]);
    assert_eq!(bad.code, 2, "{bad}");
}

#[test]
fn names_kubernetes_cannot_take_are_usage_errors() {
    let project = Project::new(
        r#"
[services.2fast]
command = ["servio", "serve", "menu"]
"#,
    );
    let run = project.run(&["export", "kubernetes"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains("`2fast`") && run.stderr.contains("start with a letter"),
        "{run}"
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn compose_maps_each_setting() {
    let project = Project::new(EVERY_KEY);
    let run = export(&project, &["compose"]);
    let compose = &yaml_documents(&run.stdout)[0];
    assert_eq!(compose["name"], "every-key");
    let web = &compose["services"]["web"];
    assert_eq!(web["image"], "servio:0.1.0");
    assert_eq!(web["command"], json!([BINARY, "serve", "menu"]));
    let environment = web["environment"].as_object().unwrap();
    assert_eq!(environment["PORT"], "8081");
    assert_eq!(environment["SERVIO_BIND"], "0.0.0.0");
    assert_eq!(environment["SERVIO_ENDPOINTS_CACHE"], "cache:8080");
    assert_eq!(environment["SERVIO_ENDPOINTS_LEGACY"], "legacy:9000");
    assert_eq!(environment["RUST_LOG"], "debug");
    assert_eq!(
        environment["GREETING"],
        GREETING.replace('$', "$$"),
        "'$' doubled: compose reads it back as the value itself"
    );
    assert_eq!(
        web["ports"],
        json!(["127.0.0.1::8081"]),
        "3 replicas: Docker picks"
    );
    assert_eq!(
        web["healthcheck"],
        json!({"test": ["CMD", BINARY, "probe", "http://127.0.0.1:8081/health?deep=1",
                        "--timeout", "2s", "--quiet"],
               "interval": "1s", "timeout": "2s", "retries": 2, "start_period": "5s",
               "start_interval": "1s"})
    );
    assert_eq!(
        web["depends_on"],
        json!({"cache": {"condition": "service_healthy"}}),
        "legacy runs elsewhere: nothing to wait for in compose"
    );
    assert_eq!(web["restart"], "no");
    assert_eq!(web["deploy"]["replicas"], 3);
    assert_eq!(web["stop_signal"], "SIGINT");
    assert_eq!(web["stop_grace_period"], "3s");
    assert_eq!(web["volumes"], json!(["web-data:/var/lib/servio"]));

    let cache = &compose["services"]["cache"];
    assert_eq!(cache["restart"], "always");
    assert_eq!(cache["ports"], json!(["127.0.0.1:8080:8080"]));
    assert_eq!(cache["healthcheck"]["test"][3], "tcp://127.0.0.1:8080");
    assert_eq!(
        cache["command"],
        json!(["/bin/sh", "-c", "exec python3 -m http.server $$PORT"])
    );
    assert!(compose["services"].get("legacy").is_none());

    let gateway = &compose["services"]["gateway"];
    assert_eq!(gateway["ports"], json!(["8000:8000"]));
    assert_eq!(
        gateway["depends_on"],
        json!({"web": {"condition": "service_healthy"}})
    );
    let conf = compose["configs"]["gateway"]["content"].as_str().unwrap();
    assert!(
        conf.contains(r#"location ~ "^/api/(orders(?:/.*)?)$$""#)
            && conf.contains("rewrite \"^/api/(orders(?:/.*)?)$$\" /$$1 break;")
            && conf.contains("proxy_pass http://web:8081;")
            && conf.contains("proxy_pass http://legacy:9000;"),
        "{conf}"
    );
    // Longest prefix first: nginx tries regex locations in order.
    let orders = conf.find("/api/(orders").unwrap();
    let legacy = conf.find("/legacy(").unwrap();
    assert!(orders < legacy, "{conf}");

    let default = Project::new(&default_manifest());
    let compose = &yaml_documents(&export(&default, &["compose"]).stdout)[0];
    assert_eq!(
        compose["services"]["order-service"]["restart"],
        "on-failure:5"
    );
    assert_eq!(
        compose["services"]["order-service"]["depends_on"],
        json!({"menu-service": {"condition": "service_healthy"},
               "inventory-service": {"condition": "service_healthy"}})
    );
}

#[test]
fn the_dockerfile_builds_only_the_binary_for_a_non_root_user() {
    let project = Project::new(PLAIN_ROUTES);
    let run = export(&project, &["dockerfile"]);
    let text = &run.stdout;
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "multi-stage:\n{text}");
    assert!(stages[0].contains(" AS build"));
    let last_stage = &text[text.rfind("\nFROM ").unwrap()..];
    let copies: Vec<&str> = last_stage
        .lines()
        .filter(|l| l.starts_with("COPY"))
        .collect();
    assert_eq!(
        copies,
        [
            "COPY --from=build /out/usr/local/bin/servio /usr/local/bin/servio",
            "COPY --from=build --chown=65532:65532 /out/var/lib/servio /var/lib/servio",
        ],
        "only the binary and its empty working folder"
    );
    assert!(last_stage.contains("\nUSER 65532:65532\n"), "{last_stage}");
    assert!(
        !last_stage.contains("\nRUN "),
        "no shell in the final image"
    );
    assert!(text.contains("cargo build --release --locked --bin servio"));

    export(&project, &["dockerfile", "-o", "Dockerfile"]);
    assert_eq!(
        std::fs::read_to_string(project.file("Dockerfile")).unwrap(),
        *text
    );
}

/// Runs kubernetes-validate --strict on `yaml`; returns its output. Fails on any error, and
/// on any warning but the one for HTTPRoute (a CRD: no bundled schema).
fn kubernetes_validate(project: &Project, name: &str, yaml: &str) -> String {
    let path = project.file(name);
    std::fs::write(&path, yaml).unwrap();
    let output = Command::new(pytool("kubernetes-validate"))
        .args(["--strict", "-k", "1.37.0"])
        .arg(&path)
        .output()
        .expect("run kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{name}:\n{text}");
    for line in text.lines() {
        assert!(
            line.starts_with("INFO") || (line.starts_with("WARN") && line.contains("HTTPRoute")),
            "{name}: {line}\n{text}"
        );
    }
    text
}

#[test]
fn kubernetes_validate_strict_passes_the_default_and_every_key_manifests() {
    let default = Project::new(&default_manifest());
    let every = Project::new(EVERY_KEY);
    let plain = Project::new(PLAIN_ROUTES);
    let cases: [(&Project, &str, &[&str]); 6] = [
        (&default, "default", &[]),
        (
            &default,
            "default-ns",
            &["--namespace", "shop", "--no-secret-values"],
        ),
        (&every, "every", &[]),
        (&every, "every-ns", &["--namespace", "shop"]),
        (&every, "every-gateway-api", &["--gateway-api"]),
        (&plain, "plain", &[]),
    ];
    for (project, name, args) in cases {
        let mut all = vec!["kubernetes"];
        all.extend_from_slice(args);
        let yaml = export(project, &all).stdout;
        let report = kubernetes_validate(project, &format!("{name}.yaml"), &yaml);
        let passed = report
            .lines()
            .filter(|l| l.contains(" passed for "))
            .count();
        let validated = yaml_documents(&yaml)
            .iter()
            .filter(|d| d["kind"] != "HTTPRoute")
            .count();
        assert_eq!(
            passed, validated,
            "{name}: every object was checked\n{report}"
        );
    }
}

#[test]
fn compose_output_matches_the_compose_specification_schema() {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/compose-spec.json");
    let check = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft7Validator(schema)
failed = False
for path in sys.argv[2:]:
    errors = sorted(validator.iter_errors(yaml.safe_load(open(path))), key=str)
    for error in errors:
        failed = True
        print(f"{path}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
sys.exit(1 if failed else 0)
"#;
    let mut files = Vec::new();
    let projects = [
        Project::new(&default_manifest()),
        Project::new(EVERY_KEY),
        Project::new(PLAIN_ROUTES),
    ];
    for project in &projects {
        export(project, &["compose", "-o", "compose.yaml"]);
        files.push(project.file("compose.yaml"));
    }
    // The schema itself is sound, and it rejects a broken file: the check can fail.
    let broken = projects[0].file("broken.yaml");
    std::fs::write(
        &broken,
        "services:\n  web:\n    restart: sometimes\n    deploy: 3\n",
    )
    .unwrap();
    let run = |paths: &[&Path]| {
        Command::new(pytool("python"))
            .arg("-c")
            .arg(check)
            .arg(&schema)
            .args(paths)
            .output()
            .expect("run python")
    };
    let good: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let output = run(&good);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(&[&broken]);
    assert!(!output.status.success(), "the broken file is refused");
    assert!(String::from_utf8_lossy(&output.stdout).contains("deploy"));
}
