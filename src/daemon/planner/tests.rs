//! Table tests of the planner: each setting that forces a restart, scale up and down,
//! added and removed services, dependency order, refusals, and the no-op.

use super::*;
use crate::protocol::Action::*;

const BASE: &str = r#"
[services.menu]
command = ["menu"]
port = 4002
[services.stock]
command = ["stock"]
[services.order]
command = ["order"]
depends_on = ["menu", "stock"]
"#;

/// Loads `text` as a services.toml, always in the same folder (so `cwd` stays the same).
fn manifest(text: &str) -> ((), Manifest) {
    static FOLDER: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let folder = FOLDER.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let path = folder.path().join("services.toml");
    std::fs::write(&path, text).expect("write manifest");
    let manifest = crate::manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    ((), manifest)
}

/// What runs when `text` was applied and everything is up.
fn running_as(text: &str) -> Snapshot {
    let (_dir, started) = manifest(text);
    started
        .services
        .values()
        .map(|s| {
            let running = Running {
                fingerprint: Fingerprint::of(s),
                replicas: s.replicas,
                active: true,
                depends_on: s.depends_on.clone(),
                external: matches!(s.launch, Launch::External(_)),
            };
            (s.name.clone(), running)
        })
        .collect()
}

fn actions(plan: &Plan) -> Vec<(&str, &Action)> {
    plan.iter()
        .map(|s| (s.service.as_str(), &s.action))
        .collect()
}

fn up() -> Intent {
    Intent::Up {
        services: vec![],
        watch: false,
    }
}

fn restart(reason: &str, replicas: u32) -> Action {
    Restart {
        reasons: vec![reason.to_string()],
        replicas,
    }
}

#[test]
fn up_on_a_running_stack_restarts_exactly_what_changed() {
    let running = running_as(BASE);
    let edits: &[(&str, &str, &str)] = &[
        (
            "command = [\"menu\"]",
            "command = [\"menu\", \"-v\"]",
            "command changed",
        ),
        ("command = [\"menu\"]", "run = \"menu\"", "command changed"),
        (
            "port = 4002",
            "port = 4002\nenv = { RUST_LOG = \"debug\" }",
            "env changed",
        ),
        ("port = 4002", "port = 4002\ncwd = \"/tmp\"", "cwd changed"),
        ("port = 4002", "port = 4012", "port changed"),
        (
            "port = 4002",
            "port = 4002\nversion = \"2.0.0\"",
            "version changed",
        ),
        (
            "port = 4002",
            "port = 4002\nhealth_check = { path = \"/ready\" }",
            "health changed",
        ),
        (
            "port = 4002",
            "port = 4002\nrestart = { policy = \"always\" }",
            "restart changed",
        ),
        (
            "port = 4002",
            "port = 4002\nstop = { timeout = \"3s\" }",
            "stop changed",
        ),
    ];
    for (from, to, reason) in edits {
        let (_dir, edited) = manifest(&BASE.replacen(from, to, 1));
        let plan = plan(&up(), &edited, &running).expect("plan");
        assert_eq!(
            actions(&plan),
            [
                ("menu", &restart(reason, 1)),
                ("stock", &Keep),
                ("order", &Keep)
            ],
            "edit {to:?}"
        );
    }
}

#[test]
fn up_without_changes_keeps_everything_and_starts_what_is_missing() {
    let (_dir, same) = manifest(BASE);
    let running = running_as(BASE);
    let plan = plan(&up(), &same, &running).expect("plan");
    assert_eq!(
        actions(&plan),
        [("menu", &Keep), ("stock", &Keep), ("order", &Keep)]
    );

    let mut partly = running.clone();
    partly.remove("stock");
    partly.get_mut("order").expect("order").active = false;
    let plan = super::plan(&up(), &same, &partly).expect("plan");
    assert_eq!(
        actions(&plan),
        [
            ("menu", &Keep),
            ("stock", &Start { replicas: 1 }),
            ("order", &Start { replicas: 1 })
        ]
    );
}

#[test]
fn replicas_alone_scale_and_the_manifest_wins_over_an_earlier_scale() {
    let running = running_as(BASE);
    let (_dir, more) = manifest(&BASE.replacen("port = 4002", "port = 4002\nreplicas = 3", 1));
    let plan = plan(&up(), &more, &running).expect("plan");
    assert_eq!(plan[0].action, Scale { from: 1, to: 3 });

    let mut scaled = running.clone();
    scaled.get_mut("stock").expect("stock").replicas = 4;
    let (_dir, same) = manifest(BASE);
    let plan = super::plan(&up(), &same, &scaled).expect("plan");
    assert_eq!(plan[1].action, Scale { from: 4, to: 1 });

    // A changed setting together with replicas: one rolling restart to the new count.
    let (_dir, both) = manifest(&BASE.replacen("port = 4002", "port = 4003\nreplicas = 2", 1));
    let plan = super::plan(&up(), &both, &running).expect("plan");
    assert_eq!(plan[0].action, restart("port changed", 2));
}

#[test]
fn removed_services_stop_first_dependents_before_their_dependencies() {
    let running = running_as(BASE);
    let (_dir, only_stock) = manifest("[services.stock]\ncommand = [\"stock\"]\n");
    let plan = plan(&up(), &only_stock, &running).expect("plan");
    assert_eq!(
        actions(&plan),
        [("order", &Stop), ("menu", &Stop), ("stock", &Keep)]
    );
    // `up SERVICE` never stops what the manifest dropped: it only looks at SERVICE.
    let plan = super::plan(
        &Intent::Up {
            services: vec!["stock".into()],
            watch: false,
        },
        &only_stock,
        &running,
    )
    .expect("plan");
    assert_eq!(actions(&plan), [("stock", &Keep)]);
}

#[test]
fn added_services_start_after_their_dependencies() {
    let running = running_as(BASE);
    let added = format!("{BASE}[services.bar]\ncommand = [\"bar\"]\ndepends_on = [\"order\"]\n");
    let (_dir, added) = manifest(&added);
    let plan = plan(&up(), &added, &running).expect("plan");
    let order: Vec<&str> = plan.iter().map(|s| s.service.as_str()).collect();
    let position = |name| order.iter().position(|n| *n == name).expect("in plan");
    assert!(position("order") < position("bar"), "{order:?}");
    assert_eq!(plan[position("bar")].action, Start { replicas: 1 });
}

#[test]
fn restart_rolls_the_named_services_at_their_current_scale() {
    let mut running = running_as(BASE);
    running.get_mut("menu").expect("menu").replicas = 3;
    let (_dir, same) = manifest(BASE);
    let named = Intent::Restart {
        services: vec!["menu".into()],
    };
    let plan = plan(&named, &same, &running).expect("plan");
    assert_eq!(actions(&plan), [("menu", &restart("restart requested", 3))]);

    let all = Intent::Restart { services: vec![] };
    let plan = super::plan(&all, &same, &running).expect("plan");
    assert!(
        plan.iter().all(|s| matches!(s.action, Restart { .. })),
        "{plan:?}"
    );
    assert_eq!(plan.last().map(|s| s.service.as_str()), Some("order"));
}

#[test]
fn stop_refuses_while_dependents_run_unless_asked_to_stop_them_too() {
    let running = running_as(BASE);
    let (_dir, same) = manifest(BASE);
    let stop = |with_dependents| Intent::Stop {
        services: vec!["menu".into()],
        with_dependents,
        timeout_ms: None,
    };
    let refused = plan(&stop(false), &same, &running).expect_err("refused");
    assert_eq!(
        refused.to_string(),
        "cannot stop menu: order depends on it; stop it first, or add --with-dependents"
    );
    let plan = super::plan(&stop(true), &same, &running).expect("plan");
    assert_eq!(actions(&plan), [("order", &Stop), ("menu", &Stop)]);

    // Once the dependent is stopped, the service itself may go.
    let mut stopped = running.clone();
    stopped.get_mut("order").expect("order").active = false;
    let plan = super::plan(&stop(false), &same, &stopped).expect("plan");
    assert_eq!(actions(&plan), [("menu", &Stop)]);

    let all = Intent::Stop {
        services: vec![],
        with_dependents: false,
        timeout_ms: None,
    };
    let plan = super::plan(&all, &same, &running).expect("plan");
    assert_eq!(plan[0].service, "order");
    assert_eq!(plan.len(), 3);
}

#[test]
fn start_starts_only_what_does_not_run() {
    let mut running = running_as(BASE);
    running.get_mut("order").expect("order").active = false;
    let (_dir, same) = manifest(BASE);
    let intent = Intent::Start {
        services: vec!["order".into()],
    };
    let plan = plan(&intent, &same, &running).expect("plan");
    assert_eq!(plan.last().map(|s| &s.action), Some(&Start { replicas: 1 }));
    assert!(plan[..plan.len() - 1].iter().all(|s| s.action == Keep));
}

#[test]
fn scale_changes_counts_and_refuses_what_it_cannot_scale() {
    let running = running_as(BASE);
    let (_dir, same) = manifest(BASE);
    let scale = |pairs: &[(&str, u32)]| Intent::Scale {
        counts: pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
    };
    let plan = plan(&scale(&[("order", 3)]), &same, &running).expect("plan");
    assert_eq!(
        plan.last().map(|s| &s.action),
        Some(&Scale { from: 1, to: 3 })
    );
    let plan = super::plan(&scale(&[("menu", 1)]), &same, &running).expect("plan");
    assert_eq!(actions(&plan), [("menu", &Keep)]);
    let plan = super::plan(&scale(&[("menu", 0)]), &same, &running).expect("plan");
    assert_eq!(plan[0].action, Scale { from: 1, to: 0 });

    let unknown = super::plan(&scale(&[("nope", 2)]), &same, &running).expect_err("unknown");
    assert!(
        unknown.to_string().contains("unknown service `nope`"),
        "{unknown}"
    );
    let external = format!("{BASE}[services.db]\ninstances = [\"127.0.0.1:5432\"]\n");
    let (_dir, external) = manifest(&external);
    let refused = super::plan(&scale(&[("db", 2)]), &external, &running).expect_err("external");
    assert!(matches!(refused, PlanError::External(_)), "{refused}");
}

#[test]
fn fingerprints_never_hold_environment_values() {
    let (_dir, with_secret) = manifest(&BASE.replacen(
        "port = 4002",
        "port = 4002\nenv = { TOKEN = \"hunter2-secret\" }",
        1,
    ));
    let text =
        serde_json::to_string(&Fingerprint::of(&with_secret.services["menu"])).expect("json");
    assert!(!text.contains("hunter2"), "{text}");
}
