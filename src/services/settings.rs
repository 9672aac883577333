//! What a platform service reads from its environment (set by the supervisor), checked
//! before anything starts. Never logged as a whole: the environment may hold secrets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::Kind;

/// The address a service listens on, when not 127.0.0.1: `servio export` sets 0.0.0.0, since
/// in a container the probes and other pods come from outside.
pub const BIND_ENV: &str = "SERVIO_BIND";

/// A service's checked configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `$SERVIO_BIND:$PORT`; `SERVIO_BIND` defaults to 127.0.0.1 (a container sets 0.0.0.0).
    pub listen: SocketAddr,
    /// `SERVIO_SERVICE`, else the kind's default name (`menu-service`, ...).
    pub service: String,
    /// `SERVIO_INSTANCE`, when the supervisor set it.
    pub instance: Option<String>,
    /// `SERVIO_VERSION`, else the crate version.
    pub version: String,
    /// `SERVIO_DB_PATH`, else `<cwd>/.servio/data/<service>.db`.
    pub db_path: PathBuf,
}

impl Kind {
    /// The service name used when `SERVIO_SERVICE` is not set.
    pub fn default_name(self) -> &'static str {
        match self {
            Kind::Menu => "menu-service",
            Kind::Inventory => "inventory-service",
            Kind::Order => "order-service",
        }
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env(kind: Kind) -> anyhow::Result<Settings> {
        let cwd = std::env::current_dir()
            .map_err(|e| anyhow::anyhow!("cannot read the current folder: {e}"))?;
        Settings::from_lookup(kind, |name| std::env::var(name).ok(), cwd)
    }

    /// Builds settings from any variable lookup (the seam the unit tests use).
    pub fn from_lookup(
        kind: Kind,
        var: impl Fn(&str) -> Option<String>,
        cwd: PathBuf,
    ) -> anyhow::Result<Settings> {
        let name = kind.default_name();
        let port = match var("PORT") {
            None => anyhow::bail!(
                "PORT is not set: `servio serve` listens on 127.0.0.1:$PORT; run it under \
                 `servio up`, or set it yourself, e.g. `PORT=3002 servio serve menu`"
            ),
            Some(text) => match text.trim().parse::<u16>() {
                Ok(port) if port != 0 => port,
                _ => anyhow::bail!("PORT must be a TCP port from 1 to 65535, got `{text}`"),
            },
        };
        let non_empty = |key: &str| var(key).filter(|v| !v.trim().is_empty());
        let bind = match non_empty(BIND_ENV) {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(text) => text.trim().parse::<IpAddr>().map_err(|_| {
                anyhow::anyhow!(
                    "{BIND_ENV} must be an IP address to listen on, like 0.0.0.0 or 127.0.0.1, \
                     got `{text}`"
                )
            })?,
        };
        let service = non_empty("SERVIO_SERVICE").unwrap_or_else(|| name.to_string());
        let db_path = match non_empty("SERVIO_DB_PATH") {
            Some(path) => cwd.join(path),
            None => cwd
                .join(".servio")
                .join("data")
                .join(format!("{service}.db")),
        };
        Ok(Settings {
            listen: SocketAddr::new(bind, port),
            instance: non_empty("SERVIO_INSTANCE"),
            version: non_empty("SERVIO_VERSION")
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string()),
            service,
            db_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(
            Kind::Inventory,
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            PathBuf::from("/srv/app"),
        )
    }

    #[test]
    fn defaults_follow_the_service_name() {
        let s = settings(&[("PORT", "3003")]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:3003");
        assert_eq!(s.service, "inventory-service");
        assert_eq!(
            s.db_path,
            PathBuf::from("/srv/app/.servio/data/inventory-service.db")
        );
        assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
        let s = settings(&[
            ("PORT", "1"),
            ("SERVIO_SERVICE", "stock"),
            ("SERVIO_VERSION", "2"),
        ])
        .unwrap();
        assert_eq!(s.db_path, PathBuf::from("/srv/app/.servio/data/stock.db"));
        assert_eq!(s.version, "2");
    }

    #[test]
    fn the_bind_address_defaults_to_loopback_and_is_checked() {
        let s = settings(&[("PORT", "3003"), ("SERVIO_BIND", "0.0.0.0")]).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:3003");
        let s = settings(&[("PORT", "3003"), ("SERVIO_BIND", "::")]).unwrap();
        assert_eq!(s.listen.to_string(), "[::]:3003");
        let s = settings(&[("PORT", "3003"), ("SERVIO_BIND", " ")]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:3003");
        let err = settings(&[("PORT", "1"), ("SERVIO_BIND", "example.com")]).unwrap_err();
        assert!(err.to_string().contains("SERVIO_BIND must be"), "{err}");
    }

    #[test]
    fn port_is_required_and_checked() {
        let missing = settings(&[]).unwrap_err().to_string();
        assert!(missing.contains("PORT is not set"), "{missing}");
        for bad in ["0", "65536", "abc", ""] {
            let err = settings(&[("PORT", bad)]).unwrap_err().to_string();
            assert!(err.contains("PORT must be"), "{bad}: {err}");
        }
    }
}
