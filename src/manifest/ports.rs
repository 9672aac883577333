//! Ports at start time: which fixed ports the stack needs, and an error at the value's
//! line:col for every one that another process already listens on.

use std::collections::BTreeMap;

use super::{Launch, Manifest, ManifestError, ManifestErrors};
use crate::process::ports::{port_holder, port_in_use};

/// Where the manifest wrote values that are checked after loading, keyed by dotted key
/// (`gateway.port`, `admin.port`, `services.NAME.port`) → 1-based (line, column).
#[derive(Debug, Clone, Default)]
pub(crate) struct Positions {
    pub ports: BTreeMap<String, (usize, usize)>,
    /// The manifest has a `[gateway]` table (or `[[gateway.routes]]`).
    pub gateway_declared: bool,
}

impl Manifest {
    /// Whether this stack runs the gateway: it has routes or a `[gateway]` table.
    pub fn gateway_enabled(&self) -> bool {
        self.positions.gateway_declared || !self.gateway.routes.is_empty()
    }

    /// The fixed ports the stack binds, as (dotted key, port). For a service with replicas
    /// only the first port: the others get free ports servio picks at spawn.
    pub fn fixed_ports(&self) -> Vec<(String, u16)> {
        let mut ports = Vec::new();
        if self.gateway_enabled() && self.gateway.port != 0 {
            ports.push(("gateway.port".to_string(), self.gateway.port));
        }
        if self.admin.port != 0 {
            ports.push(("admin.port".to_string(), self.admin.port));
        }
        for (name, service) in &self.services {
            if let (Launch::Command(_), Some(port)) = (&service.launch, service.port) {
                ports.push((format!("services.{name}.port"), port));
            }
        }
        ports
    }

    /// Errors for every fixed port (services, gateway, admin) that something else listens on,
    /// naming the holder when it can be found. `ours(port)` says a port is held by this stack.
    pub fn check_ports(&self, ours: &dyn Fn(u16) -> bool) -> Result<(), ManifestErrors> {
        let mut errors: Vec<ManifestError> = self
            .fixed_ports()
            .into_iter()
            .filter(|(_, port)| !ours(*port) && port_in_use(*port))
            .map(|(key, port)| {
                let holder = port_holder(port).unwrap_or_else(|| "another process".to_string());
                let (line, column) = self.positions.ports.get(&key).copied().unwrap_or((0, 0));
                ManifestError {
                    file: self.path.clone(),
                    line,
                    column,
                    key,
                    message: format!("port {port} is already in use by {holder}"),
                    fix: "stop that process or choose another port".to_string(),
                }
            })
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        errors.sort_by_key(|e| (e.line, e.column));
        Err(ManifestErrors(errors))
    }
}
