//! One `[services.NAME]` table → a resolved `Service`: its name, how it launches (argv, shell
//! line or external instances), replicas, environment and working folder. Health, restart
//! and stop policies are resolved in `policy`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};

use super::diagnostics::Diagnostics;
use super::raw::{RawEntry, RawService};
use super::{Launch, Service, policy};

const NAME_FIX: &str = "use 1-63 lowercase letters, digits and '-', not starting or ending with \
'-', like \"order-service\"";

/// Resolves one service; `None` when its table did not deserialize (already reported).
pub(super) fn resolve(
    entry: &RawEntry,
    root: &Path,
    current_exe: Option<&Path>,
    diag: &mut Diagnostics,
) -> Option<Service> {
    let key = format!("services.{}", entry.name);
    if !is_valid_name(&entry.name) {
        let message = format!("invalid service name `{}`", entry.name);
        diag.at(&entry.name_span, &key, message, NAME_FIX);
    }
    let raw = entry.service.as_ref()?;
    let launch = launch(entry, raw, current_exe, diag);
    let external = matches!(launch, Launch::External(_));

    let port = raw.port.as_ref().map(|p| *p.get_ref()).filter(|p| *p != 0);
    let mut replicas = 1;
    if let Some(value) = &raw.replicas {
        replicas = *value.get_ref();
        if replicas == 0 {
            let message = "replicas must be at least 1".to_string();
            diag.at(
                &value.span(),
                &format!("{key}.replicas"),
                message,
                "write replicas = 1 or more",
            );
        }
    }
    if external {
        let fix = "remove it: each address in `instances` already names its port";
        if let Some(value) = &raw.port {
            let message = "`port` does not apply to a service with `instances`".to_string();
            diag.at(&value.span(), &format!("{key}.port"), message, fix);
        }
        if let Some(value) = raw.replicas.as_ref().filter(|r| *r.get_ref() > 1) {
            let message = "`replicas` does not apply to a service with `instances`".to_string();
            let fix = "remove it: servio runs nothing for it; list every address in `instances`";
            diag.at(&value.span(), &format!("{key}.replicas"), message, fix);
        }
    }

    let mut env = BTreeMap::new();
    for (name, value) in raw.env.iter().flatten() {
        let name_text = name.get_ref();
        let env_key = format!("{key}.env.{name_text}");
        if name_text.is_empty() || name_text.contains(['=', '\0']) {
            let message = format!("invalid environment variable name `{name_text}`");
            diag.at(
                &name.span(),
                &env_key,
                message,
                "use a name without '=', like RUST_LOG",
            );
        }
        if value.get_ref().contains('\0') {
            let message = "an environment value cannot contain a NUL character".to_string();
            diag.at(&value.span(), &env_key, message, "remove the \\u0000");
        }
        env.insert(name_text.clone(), value.get_ref().clone());
    }

    let cwd = match &raw.cwd {
        None => root.to_path_buf(),
        Some(value) => {
            let cwd = normalize(&root.join(value.get_ref()));
            if !cwd.is_dir() {
                let message = format!("folder `{}` does not exist", cwd.display());
                let fix = "create it, or write a folder relative to the manifest's folder";
                diag.at(&value.span(), &format!("{key}.cwd"), message, fix);
            }
            cwd
        }
    };

    let mut depends_on: Vec<String> = Vec::new();
    for dep in raw.depends_on.iter().flatten() {
        if !depends_on.contains(dep.get_ref()) {
            depends_on.push(dep.get_ref().clone());
        }
    }

    let mut watch = Vec::new();
    for pattern in raw.watch.iter().flatten() {
        let text = pattern.get_ref();
        if let Err(error) = globset::Glob::new(text) {
            let message = format!("`{text}` is not a glob: {}", error.kind());
            let fix = "write a glob relative to the service's cwd, like \"src/**/*.rs\"";
            diag.at(&pattern.span(), &format!("{key}.watch"), message, fix);
        } else if external {
            let message = "`watch` does not apply to a service with `instances`".to_string();
            let fix = "remove it: servio cannot restart what runs elsewhere";
            diag.at(&pattern.span(), &format!("{key}.watch"), message, fix);
        }
        watch.push(text.clone());
    }

    Some(Service {
        name: entry.name.clone(),
        version: raw
            .version
            .as_ref()
            .map_or_else(|| "0.0.0".to_string(), |v| v.get_ref().clone()),
        launch,
        port: if external { None } else { port },
        replicas: if external { 1 } else { replicas.max(1) },
        env,
        cwd,
        depends_on,
        watch,
        health_check: policy::health(raw.health_check.as_ref(), &key, diag),
        restart: policy::restart(raw.restart.as_ref(), &key, diag),
        stop: policy::stop(raw.stop.as_ref(), &key, diag),
    })
}

/// A lowercase DNS label: 1-63 of [a-z0-9-], not starting or ending with '-'.
pub fn is_valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn launch(
    entry: &RawEntry,
    raw: &RawService,
    current_exe: Option<&Path>,
    diag: &mut Diagnostics,
) -> Launch {
    let key = format!("services.{}", entry.name);
    if let Some(instances) = &raw.instances {
        let instances_key = format!("{key}.instances");
        if raw.command.is_some() || raw.run.is_some() {
            let message =
                "a service with `instances` runs elsewhere, so it cannot also have `command` or `run`"
                    .to_string();
            let fix = "remove `instances` to let servio start it, or remove `command`/`run`";
            diag.at(&instances.span(), &instances_key, message, fix);
        }
        if instances.get_ref().is_empty() {
            let message = "`instances` lists no address".to_string();
            let fix = "list addresses like [\"127.0.0.1:8081\"], or use `command` instead";
            diag.at(&instances.span(), &instances_key, message, fix);
        }
        let mut addresses = Vec::new();
        for address in instances.get_ref() {
            match parse_address(address.get_ref()) {
                Some(parsed) => addresses.push(parsed),
                None => {
                    let message = format!("invalid address `{}`", address.get_ref());
                    let fix = "write IP:PORT, like \"127.0.0.1:8081\"";
                    diag.at(&address.span(), &instances_key, message, fix);
                }
            }
        }
        return Launch::External(addresses);
    }
    match (&raw.command, &raw.run) {
        (Some(_), Some(run)) => {
            let message = "both `command` and `run` are set".to_string();
            let fix = "keep one: `command` is an argv list, `run` a shell line";
            diag.at(&run.span(), &format!("{key}.run"), message, fix);
            Launch::Command(Vec::new())
        }
        (Some(command), None) => {
            let argv: Vec<String> = command
                .get_ref()
                .iter()
                .map(|a| a.get_ref().clone())
                .collect();
            if argv.first().is_none_or(|program| program.trim().is_empty()) {
                let message = "empty command".to_string();
                let fix = "name the program and its arguments, like [\"python3\", \"app.py\"]";
                diag.at(&command.span(), &format!("{key}.command"), message, fix);
            }
            Launch::Command(replace_servio(argv, current_exe))
        }
        (None, Some(run)) => {
            if run.get_ref().trim().is_empty() {
                let message = "empty command".to_string();
                let fix = "write a shell line, like run = \"python3 app.py\"";
                diag.at(&run.span(), &format!("{key}.run"), message, fix);
            }
            let shell = ["/bin/sh", "-c", run.get_ref().as_str()];
            Launch::Command(shell.iter().map(|s| s.to_string()).collect())
        }
        (None, None) => {
            let message = "empty command: no `command`, `run` or `instances`".to_string();
            let fix = "add command = [\"program\", \"arg\"], run = \"shell line\", or \
instances = [\"IP:PORT\"]";
            diag.at(&entry.name_span, &key, message, fix);
            Launch::Command(Vec::new())
        }
    }
}

/// A leading "servio" means this very binary, wherever it is installed.
fn replace_servio(mut argv: Vec<String>, current_exe: Option<&Path>) -> Vec<String> {
    if let (Some(first), Some(exe)) = (argv.first_mut(), current_exe) {
        if first == "servio" {
            *first = exe.to_string_lossy().into_owned();
        }
    }
    argv
}

fn parse_address(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        return (address.port() != 0).then_some(address);
    }
    let port: u16 = text.strip_prefix("localhost:")?.parse().ok()?;
    (port != 0).then(|| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// `root/./a/../b` → `root/b`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_dns_labels() {
        let long = "a".repeat(63);
        let too_long = "a".repeat(64);
        for good in ["a", "order-service", "v2", "a-b-c", long.as_str()] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Order",
            "a_b",
            "a.b",
            "é",
            too_long.as_str(),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn addresses_need_an_ip_and_a_port() {
        assert_eq!(
            parse_address("127.0.0.1:8081"),
            Some(([127, 0, 0, 1], 8081).into())
        );
        assert_eq!(
            parse_address("localhost:9"),
            Some(([127, 0, 0, 1], 9).into())
        );
        assert!(parse_address("[::1]:80").is_some());
        for bad in [
            "127.0.0.1",
            "127.0.0.1:0",
            "example.com:80",
            "",
            "1.2.3.4:99999",
        ] {
            assert_eq!(parse_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/a/.")), PathBuf::from("/a"));
    }
}
