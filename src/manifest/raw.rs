//! The manifest as written: serde structs that mirror `services.toml` key for key, every value
//! wrapped in `Spanned` so later checks can point at it. Unknown keys are rejected here.
//! Nothing is defaulted or checked beyond TOML types; that is `resolve`'s job.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// The whole file, assembled section by section so one bad section does not hide the others.
#[derive(Debug, Default)]
pub(super) struct RawManifest {
    pub project: Option<RawProject>,
    pub gateway: Option<RawGateway>,
    /// Where `[gateway]` (or the first `[[gateway.routes]]`) is written, when it is.
    pub gateway_span: Option<Range<usize>>,
    pub admin: Option<RawAdmin>,
    pub logs: Option<RawLogs>,
    /// In file order.
    pub services: Vec<RawEntry>,
}

/// One `[services.NAME]` table. `service` is `None` when it failed to deserialize: its name
/// still counts as a known service so that dependents do not get a second, misleading error.
#[derive(Debug)]
pub(super) struct RawEntry {
    pub name: String,
    pub name_span: Range<usize>,
    pub service: Option<RawService>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub name: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub port: Option<Spanned<u16>>,
    pub routes: Option<Vec<Spanned<RawRoute>>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub per_try_timeout: Option<Spanned<String>>,
    pub request_timeout: Option<Spanned<String>>,
    pub header_read_timeout: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<String>>,
    pub max_body: Option<Spanned<RawSize>>,
    pub max_connections: Option<Spanned<u32>>,
    pub max_concurrent: Option<Spanned<u32>>,
    pub retries: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub prefix: Spanned<String>,
    pub service: Spanned<String>,
    pub strip_prefix: Option<Spanned<String>>,
    pub balance: Option<Spanned<RawBalance>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawBalance {
    LeastRequest,
    RoundRobin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub port: Option<Spanned<u16>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogs {
    pub max_size: Option<Spanned<RawSize>>,
    pub max_files: Option<Spanned<u32>>,
}

/// `max_size` as written: a byte count or a string like "10MiB" (parsed in `resolve`).
#[derive(Debug)]
pub(super) enum RawSize {
    Bytes(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size like \"10MiB\" or a number of bytes")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub version: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub run: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub replicas: Option<Spanned<u32>>,
    pub env: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub cwd: Option<Spanned<String>>,
    pub depends_on: Option<Vec<Spanned<String>>>,
    pub watch: Option<Vec<Spanned<String>>>,
    pub instances: Option<Spanned<Vec<Spanned<String>>>>,
    pub health_check: Option<RawHealth>,
    pub restart: Option<RawRestart>,
    pub stop: Option<RawStop>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub kind: Option<Spanned<RawProbeKind>>,
    pub path: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub start_period: Option<Spanned<String>>,
    pub unhealthy_threshold: Option<Spanned<u32>>,
    pub liveness_threshold: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawProbeKind {
    Http,
    Tcp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRestart {
    pub policy: Option<Spanned<RawRestartMode>>,
    pub max_restarts: Option<Spanned<u32>>,
    pub within: Option<Spanned<String>>,
    pub backoff: Option<Spanned<String>>,
    pub max_backoff: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawRestartMode {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStop {
    pub signal: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}
