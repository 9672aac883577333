//! `servio daemon`: the control-plane process itself. `servio up` starts it detached; users
//! rarely run it by hand.

use std::process::ExitCode;

use clap::Args;

use super::ManifestArg;
use crate::error::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
}

pub fn run(args: DaemonArgs) -> CliResult<ExitCode> {
    let manifest = args.manifest.load()?;
    init_tracing();
    super::runtime()?
        .block_on(crate::daemon::run(manifest))
        .map_err(CliError::Failure)?;
    Ok(ExitCode::SUCCESS)
}

/// tracing to stderr (the daemon log when detached), filtered by RUST_LOG (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::term::stderr_color())
        .try_init();
}
