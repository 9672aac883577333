//! servio: a local control plane for microservices, in one binary.
//!
//! # Layout
//!
//! - [`cli`]: the `servio` command line, one file per subcommand. Talks to the daemon through
//!   [`protocol`] over `.servio/control.sock`.
//! - [`manifest`]: `services.toml`: parsing, defaults, validation with file:line:col errors.
//! - [`registry`]: the single source of truth for instances and their health (a pure state
//!   machine), with a change index for watches and the healthy view the traffic path reads.
//! - [`daemon`]: the control plane process: per-service controllers, the planner and the one
//!   executor behind every lifecycle verb, health probes, the control socket and the admin API.
//! - [`logs`]: captured service output: the rotating writer and the reader behind `servio logs`.
//! - [`process`]: process groups, signals and start times (never signal a reused pid).
//! - [`paths`]: where a stack keeps its files (`.servio/` beside the manifest).
//! - [`services`]: the Servio platform services (`servio serve menu|inventory|order`).
//! - [`gateway`]: the reverse proxy in front of the services (routes, balancing, breakers,
//!   retries, limits), reading the registry's healthy view.
//! - [`balance`]: instance picking, breakers and retry budget, shared by gateway and client.
//! - [`client`]: the discovery-aware service client used by the platform services.
//! - [`export`]: the manifest rendered for Kubernetes and Compose (`servio export`).
//! - [`error`]: exit codes, decided in one place.

pub mod balance;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod error;
pub mod export;
pub mod gateway;
pub mod logs;
pub mod manifest;
pub mod paths;
pub mod process;
pub mod protocol;
pub mod registry;
pub mod services;
pub mod term;
