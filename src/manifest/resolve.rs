//! Raw sections → the resolved `Manifest`: defaults filled in, values checked one by one
//! (durations, sizes). Services are resolved in `service`, the gateway in `gateway`; checks
//! that relate several values (dependencies, port clashes) run afterwards in `checks`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::diagnostics::Diagnostics;
use super::ports::Positions;
use super::raw::{RawLogs, RawManifest, RawSize};
use super::{Admin, LogPolicy, Manifest, gateway, service};

/// Keys whose values are durations (for the fix of a wrong-type error).
pub(super) const DURATION_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "start_period",
    "within",
    "backoff",
    "max_backoff",
    "connect_timeout",
    "per_try_timeout",
    "request_timeout",
    "header_read_timeout",
    "idle_timeout",
];
pub(super) const DURATION_FIX: &str = "write a number and a unit, like \"500ms\" or \"2s\"";
pub(super) const SIZE_FIX: &str =
    "write a number of bytes or a number and a unit, like \"512KiB\", \"10MiB\" or \"1GiB\"";

pub const DEFAULT_GATEWAY_PORT: u16 = 3000;
pub const DEFAULT_ADMIN_PORT: u16 = 2999;

pub(super) fn resolve(raw: &RawManifest, path: &Path, diag: &mut Diagnostics) -> Manifest {
    let root = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut positions = Positions {
        gateway_declared: raw.gateway.is_some() || raw.gateway_span.is_some(),
        ..Positions::default()
    };

    let project = match raw.project.as_ref().and_then(|p| p.name.as_ref()) {
        Some(name) if name.get_ref().trim().is_empty() => {
            diag.at(
                &name.span(),
                "project.name",
                "the project name is empty".to_string(),
                "write a name, like name = \"shop\", or remove the key to use the folder's name",
            );
            String::new()
        }
        Some(name) => name.get_ref().clone(),
        None => root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "servio".to_string()),
    };

    let gateway_port = raw.gateway.as_ref().and_then(|g| g.port.as_ref());
    let admin_port = raw.admin.as_ref().and_then(|a| a.port.as_ref());
    remember(&mut positions, diag, "gateway.port", gateway_port);
    remember(&mut positions, diag, "admin.port", admin_port);
    let current_exe = std::env::current_exe().ok();
    let mut services = BTreeMap::new();
    for entry in &raw.services {
        let resolved = service::resolve(entry, &root, current_exe.as_deref(), diag);
        if let (Some(resolved), Some(body)) = (resolved, &entry.service) {
            let key = format!("services.{}.port", entry.name);
            remember(&mut positions, diag, &key, body.port.as_ref());
            services.insert(entry.name.clone(), resolved);
        }
    }

    Manifest {
        path: path.to_path_buf(),
        root,
        project,
        gateway: gateway::resolve(raw.gateway.as_ref(), diag),
        admin: Admin {
            port: admin_port.map_or(DEFAULT_ADMIN_PORT, |p| *p.get_ref()),
        },
        logs: logs(raw.logs.as_ref(), diag),
        services,
        positions,
    }
}

fn remember(positions: &mut Positions, diag: &Diagnostics, key: &str, port: Option<&Spanned<u16>>) {
    if let Some(port) = port {
        positions
            .ports
            .insert(key.to_string(), diag.position(port.span().start));
    }
}

fn logs(raw: Option<&RawLogs>, diag: &mut Diagnostics) -> LogPolicy {
    let mut policy = LogPolicy::default();
    let Some(raw) = raw else { return policy };
    if let Some(size) = &raw.max_size {
        match size_value(size.get_ref()) {
            Some(bytes) if bytes > 0 => policy.max_size = bytes,
            _ => diag.at(
                &size.span(),
                "logs.max_size",
                bad_size(size.get_ref()),
                SIZE_FIX,
            ),
        }
    }
    if let Some(files) = &raw.max_files {
        policy.max_files = *files.get_ref();
    }
    policy
}

pub(super) fn size_value(size: &RawSize) -> Option<u64> {
    match size {
        RawSize::Bytes(n) => u64::try_from(*n).ok(),
        RawSize::Text(text) => parse_size(text),
    }
}

pub(super) fn bad_size(size: &RawSize) -> String {
    match size {
        RawSize::Bytes(n) => format!("invalid size `{n}`: it must be more than 0"),
        RawSize::Text(text) => format!("invalid size `{text}`"),
    }
}

/// "10MiB", "512 KiB", "10MB", "1g", "4096" → bytes. Decimal units (KB, MB, GB) are powers of
/// 1000; binary ones (KiB, MiB, GiB, and bare K, M, G) powers of 1024.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text.get(..digits)?.parse().ok()?;
    let unit = text.get(digits..)?.trim().to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// Renders bytes the way `parse_size` reads them back, in the largest exact binary unit.
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// A duration value, or `default` when absent; a bad one is reported at its position.
pub(super) fn duration(
    diag: &mut Diagnostics,
    value: Option<&Spanned<String>>,
    key: &str,
    default: Duration,
) -> Duration {
    let Some(value) = value else { return default };
    match humantime::parse_duration(value.get_ref().trim()) {
        Ok(parsed) => parsed,
        Err(_) => {
            let span: Range<usize> = value.span();
            let message = format!("invalid duration `{}`", value.get_ref());
            diag.at(&span, key, message, DURATION_FIX);
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_round_trip() {
        let cases = [
            ("10MiB", Some(10 << 20)),
            ("512KiB", Some(512 << 10)),
            ("10MB", Some(10_000_000)),
            ("1GiB", Some(1 << 30)),
            ("1 gib", Some(1 << 30)),
            ("4096", Some(4096)),
            ("12b", Some(12)),
            ("10XB", None),
            ("MiB", None),
            ("", None),
            ("-1", None),
            ("99999999999999GiB", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), expected, "{text}");
        }
        for bytes in [1, 1000, 1024, 10 << 20, 3 << 30, (1 << 20) + 1] {
            assert_eq!(parse_size(&format_size(bytes)), Some(bytes));
        }
        assert_eq!(format_size(10 << 20), "10MiB");
    }
}
