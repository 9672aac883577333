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
    // Detached, the daemon writes its log itself, rotated like the service logs (the access
    // log of the gateway goes there too): logs must never fill the disk.
    let paths = crate::paths::StatePaths::for_project(&manifest.root);
    let log =
        crate::logs::ServiceLog::open_raw(&paths.daemon_log(), manifest.logs).map_err(|e| {
            CliError::failure(format!("cannot open {}: {e}", paths.daemon_log().display()))
        })?;
    init_tracing_to(move || RawLogWriter(log.clone()), false);
    super::runtime()?
        .block_on(crate::daemon::run(manifest))
        .map_err(CliError::Failure)?;
    Ok(ExitCode::SUCCESS)
}

/// tracing to stderr (a foreground daemon), filtered by RUST_LOG (default info).
pub fn init_tracing() {
    init_tracing_to(std::io::stderr, crate::term::stderr_color());
}

fn init_tracing_to<W>(writer: W, ansi: bool)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .try_init();
}

/// One formatted tracing event at a time into the rotating daemon log.
struct RawLogWriter(crate::logs::ServiceLog);

impl std::io::Write for RawLogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write_raw(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
