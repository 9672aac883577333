//! The control-plane daemon: supervisor, health probes, registry, control socket, admin API.
