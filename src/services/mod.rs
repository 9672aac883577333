//! The Servio platform services, run as `servio serve menu|inventory|order`.

/// Which platform service to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Menu,
    Inventory,
    Order,
}

/// Runs the service on `$PORT` until SIGTERM/SIGINT.
pub async fn serve(kind: Kind) -> anyhow::Result<()> {
    let _ = kind;
    anyhow::bail!("not built yet")
}
