//! One row per validation rule: the manifest, then where the error points, its key and
//! (part of) its message. Every error must also carry a fix.

use std::path::Path;

use super::*;

/// (rule, manifest text, (line, column), key, part of the message)
type Case = (
    &'static str,
    String,
    (usize, usize),
    &'static str,
    &'static str,
);

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let a_dep_b = format!("{A}depends_on = [\"b\"]\n");
    let route = |prefix: &str, service: &str| {
        format!("[[gateway.routes]]\nprefix = \"{prefix}\"\nservice = \"{service}\"\n")
    };
    vec![
        ("syntax", "[services.a\n".into(), (1, 12), "", "unclosed table"),
        ("unknown key", format!("{A}prots = 3\n"), (3, 1), "services.a.prots", "unknown field `prots`, expected one of"),
        ("unknown section", "servics = 1\n".into(), (1, 1), "servics", "unknown field `servics`"),
        ("unknown nested key", format!("{A}health_check = {{ pth = \"/x\" }}\n"), (3, 18), "services.a.health_check.pth", "unknown field `pth`"),
        ("wrong type", format!("{A}port = \"3002\"\n"), (3, 8), "services.a.port", "invalid type: string \"3002\", expected u16"),
        ("wrong type in array", "[services.a]\ncommand = [\"a\", 1]\n".into(), (2, 17), "services.a.command", "invalid type: integer `1`"),
        ("unknown variant", format!("{A}restart = {{ policy = \"sometimes\" }}\n"), (3, 22), "services.a.restart.policy", "unknown variant `sometimes`"),
        ("unknown dependency", a_dep_b.clone(), (3, 15), "services.a.depends_on", "unknown dependency `b`"),
        ("cycle", format!("{a_dep_b}[services.b]\ncommand = [\"true\"]\ndepends_on = [\"a\"]\n"), (3, 15), "services.a.depends_on", "dependency cycle: a → b → a"),
        ("self cycle", format!("{A}depends_on = [\"a\"]\n"), (3, 15), "services.a.depends_on", "dependency cycle: a → a"),
        ("same port", format!("{A}port = 3002\n[services.b]\nrun = \"x\"\nport = 3002\n"), (6, 8), "services.b.port", "port 3002 is already used by `a`"),
        ("same port as another service's", format!("{A}port = 3002\nreplicas = 3\n[services.b]\nrun = \"x\"\nport = 3002\n"), (7, 8), "services.b.port", "port 3002 is already used by `a`"),
        ("gateway port", format!("[gateway]\nport = 3005\n{A}port = 3005\n"), (5, 8), "services.a.port", "port 3005 is already used by the gateway"),
        ("default admin port", format!("{A}port = 2999\n"), (3, 8), "services.a.port", "port 2999 is already used by the admin API"),
        ("gateway and admin", "[gateway]\nport = 4000\n[admin]\nport = 4000\n".into(), (4, 8), "admin.port", "port 4000 is already used by the gateway"),
        ("bad duration", format!("{A}restart = {{ within = \"5x\" }}\n"), (3, 22), "services.a.restart.within", "invalid duration `5x`"),
        ("duration of wrong type", format!("{A}stop = {{ timeout = 5 }}\n"), (3, 20), "services.a.stop.timeout", "invalid type: integer `5`"),
        ("command = []", "[services.a]\ncommand = []\n".into(), (2, 11), "services.a.command", "empty command"),
        ("run = \"\"", "[services.a]\nrun = \"\"\n".into(), (2, 7), "services.a.run", "empty command"),
        ("no command", "[services.a]\nport = 3002\n".into(), (1, 11), "services.a", "empty command: no `command`, `run` or `instances`"),
        ("command and run", format!("{A}run = \"x\"\n"), (3, 7), "services.a.run", "both `command` and `run` are set"),
        ("instances and command", format!("{A}instances = [\"127.0.0.1:1\"]\n"), (3, 13), "services.a.instances", "cannot also have `command` or `run`"),
        ("bad instance", "[services.a]\ninstances = [\"db:5432\"]\n".into(), (2, 14), "services.a.instances", "invalid address `db:5432`"),
        ("no instances", "[services.a]\ninstances = []\n".into(), (2, 13), "services.a.instances", "`instances` lists no address"),
        ("port with instances", "[services.a]\ninstances = [\"127.0.0.1:1\"]\nport = 1\n".into(), (3, 8), "services.a.port", "does not apply"),
        ("invalid name", "[services.Order_Service]\nrun = \"x\"\n".into(), (1, 11), "services.Order_Service", "invalid service name `Order_Service`"),
        ("route to unknown service", format!("{}{A}", route("/x", "b")), (3, 11), "gateway.routes[0].service", "route to unknown service `b`"),
        ("route prefix", format!("{}{A}", route("x", "a")), (2, 10), "gateway.routes[0].prefix", "prefix `x` does not start with '/'"),
        ("strip prefix", format!("{}strip_prefix = \"/z\"\n{A}", route("/x/y", "a")), (4, 16), "gateway.routes[0].strip_prefix", "not a prefix"),
        ("route prefix twice", format!("{}{}{A}", route("/x", "a"), route("/x", "a")), (5, 10), "gateway.routes[1].prefix", "routed twice"),
        ("route field missing", format!("[[gateway.routes]]\nprefix = \"/x\"\n{A}"), (1, 1), "gateway.routes[0]", "missing field `service`"),
        ("replicas 0", format!("{A}replicas = 0\n"), (3, 12), "services.a.replicas", "replicas must be at least 1"),
        ("bad signal", format!("{A}stop = {{ signal = \"SIGNOPE\" }}\n"), (3, 19), "services.a.stop.signal", "unknown signal `SIGNOPE`"),
        ("bad size", format!("[logs]\nmax_size = \"10XB\"\n{A}"), (2, 12), "logs.max_size", "invalid size `10XB`"),
        ("zero size", format!("[logs]\nmax_size = 0\n{A}"), (2, 12), "logs.max_size", "invalid size `0`"),
        ("health path", format!("{A}health_check = {{ path = \"health\" }}\n"), (3, 25), "services.a.health_check.path", "does not start with '/'"),
        ("zero interval", format!("{A}health_check = {{ interval = \"0s\" }}\n"), (3, 29), "services.a.health_check.interval", "must be longer than 0"),
        ("backoff order", format!("{A}restart = {{ backoff = \"2s\", max_backoff = \"1s\" }}\n"), (3, 43), "services.a.restart.max_backoff", "shorter than backoff"),
        ("missing cwd", format!("{A}cwd = \"nowhere\"\n"), (3, 7), "services.a.cwd", "does not exist"),
        ("bad env name", format!("{A}env = {{ \"A=B\" = \"1\" }}\n"), (3, 9), "services.a.env.A=B", "invalid environment variable name"),
        ("empty project name", format!("[project]\nname = \"\"\n{A}"), (2, 8), "project.name", "the project name is empty"),
        ("services not a table", "services = 3\n".into(), (1, 12), "services", "expected a table"),
        ("gateway duration", "[gateway]\nconnect_timeout = \"2x\"\n".into(), (2, 19), "gateway.connect_timeout", "invalid duration `2x`"),
        ("gateway duration type", "[gateway]\nrequest_timeout = 5\n".into(), (2, 19), "gateway.request_timeout", "invalid type: integer `5`"),
        ("gateway zero duration", "[gateway]\nidle_timeout = \"0s\"\n".into(), (2, 16), "gateway.idle_timeout", "must be longer than 0"),
        ("per try past request", "[gateway]\nrequest_timeout = \"1s\"\nper_try_timeout = \"2s\"\n".into(), (3, 19), "gateway.per_try_timeout", "longer than request_timeout"),
        ("gateway max_body", "[gateway]\nmax_body = \"lots\"\n".into(), (2, 12), "gateway.max_body", "invalid size `lots`"),
        ("gateway max_connections", "[gateway]\nmax_connections = 0\n".into(), (2, 19), "gateway.max_connections", "max_connections must be at least 1"),
        ("gateway max_concurrent", "[gateway]\nmax_concurrent = 0\n".into(), (2, 18), "gateway.max_concurrent", "max_concurrent must be at least 1"),
        ("gateway retries", "[gateway]\nretries = 11\n".into(), (2, 11), "gateway.retries", "retries must be at most 10"),
        ("gateway unknown key", "[gateway]\ntimeout = \"1s\"\n".into(), (2, 1), "gateway.timeout", "unknown field `timeout`"),
        ("route balance", format!("{}balance = \"random\"\n{A}", route("/x", "a")), (4, 11), "gateway.routes[0].balance", "unknown variant `random`"),
        ("route balances disagree", format!("{}balance = \"round_robin\"\n{}balance = \"least_request\"\n{A}", route("/x", "a"), route("/y", "a")), (8, 11), "gateway.routes[1].balance", "disagree on `balance`"),
        ("route prefix with dots", format!("{}{A}", route("/api/../x", "a")), (2, 10), "gateway.routes[0].prefix", "not a plain path"),
        ("route prefix with //", format!("{}{A}", route("/api//x", "a")), (2, 10), "gateway.routes[0].prefix", "not a plain path"),
        ("strip inside a segment", format!("{}strip_prefix = \"/ap\"\n{A}", route("/api/orders", "a")), (4, 16), "gateway.routes[0].strip_prefix", "ends inside a segment"),
    ]
}

#[test]
fn each_rule_reports_line_column_key_and_message() {
    for (name, text, (line, column), key, message) in cases() {
        let errors = errors_of(&text);
        let found = errors.iter().find(|e| e.message.contains(message));
        let Some(error) = found else {
            let all = ManifestErrors(errors);
            panic!("{name}: no error containing {message:?} in:\n{all}");
        };
        let at = (error.line, error.column);
        assert_eq!(at, (line, column), "{name}: {error}");
        assert_eq!(error.key, key, "{name}: {error}");
        assert!(!error.fix.is_empty(), "{name}: {error}");
        assert!(error.file.ends_with("services.toml"), "{name}: {error}");
    }
}

#[test]
fn collects_every_error_not_just_the_first() {
    let text = "[services.a]\nprots = 1\nrun = \"x\"\n[services.b]\nrun = \"x\"\nreplicas = 0\n\
                [services.c]\nrun = \"x\"\ndepends_on = [\"zz\"]\nstop = { timeout = \"5x\" }\n";
    let errors = errors_of(text);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 6, 9, 10], "{}", ManifestErrors(errors));
}

#[test]
fn a_broken_service_does_not_make_its_dependents_fail_too() {
    let text = format!("{A}depends_on = [\"b\"]\n[services.b]\nprots = 1\n");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{}", ManifestErrors(errors));
    assert_eq!(errors[0].key, "services.b.prots");
}

#[test]
fn unknown_dependency_fix_names_the_known_services() {
    let errors = errors_of(&format!(
        "{A}depends_on = [\"menu\"]\n[services.b]\nrun = \"x\"\n"
    ));
    assert_eq!(errors[0].fix, "use one of the known services: a, b");
}

#[test]
fn a_missing_file_has_no_position_and_says_what_to_do() {
    let errors = load(Path::new("/nonexistent/services.toml"))
        .expect_err("missing")
        .0;
    assert_eq!((errors[0].line, errors[0].column), (0, 0));
    assert!(
        errors[0].message.contains("cannot read the manifest"),
        "{}",
        errors[0]
    );
}

#[test]
fn no_input_makes_loading_panic() {
    let template = include_str!("../../../templates/services.toml");
    let path = std::env::temp_dir()
        .join("servio-no-such-dir")
        .join("services.toml");
    let cut = |i: usize| template.is_char_boundary(i).then(|| &template[..i]);
    for text in (0..template.len()).step_by(3).filter_map(cut) {
        let _ = super::super::load::from_text(&path, text);
    }
    for text in [
        "\u{feff}",
        "\0",
        "[services.\"\"]",
        "services.a.port = 99999999999",
        "a.b.c.d = [[[[1]]]]",
    ] {
        let _ = super::super::load::from_text(&path, text);
    }
}
