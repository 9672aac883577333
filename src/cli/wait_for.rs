//! `servio wait-for URL --timeout T`: probes until the URL is healthy or the time is up, for
//! init containers and scripts that must not start before a dependency answers (the
//! exported Kubernetes initContainers run it). Exit 0 healthy, 1 timed out, 2 bad URL.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::probe::Target;
use crate::error::{CliError, CliResult};

/// The most one probe may take; a slower answer counts as a failure and is tried again.
const MAX_PROBE: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  servio wait-for http://menu-service:3002/health --timeout 60s\n  \
servio wait-for tcp://db:5432 -t 30s && ./migrate\n\nExit codes: 0 healthy, 1 not healthy \
within the timeout, 2 bad URL."
)]
pub struct WaitForArgs {
    /// http://HOST:PORT/PATH (GET, wants 2xx or 3xx) or tcp://HOST:PORT (connects)
    #[arg(value_name = "URL")]
    pub url: String,
    /// How long to wait for the first healthy answer
    #[arg(short, long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// Pause between probes
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = super::parse_duration)]
    pub interval: Duration,
    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: WaitForArgs) -> CliResult<ExitCode> {
    let target = Target::parse(&args.url).map_err(CliError::usage)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    let started = Instant::now();
    let deadline = started + args.timeout;
    let last = runtime.block_on(async {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reason = match target
                .probe(left.min(MAX_PROBE).max(Duration::from_millis(1)))
                .await
            {
                Ok(()) => return None,
                Err(reason) => reason,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Some(reason);
            }
            tokio::time::sleep(args.interval.min(left)).await;
        }
    });
    match last {
        None => {
            if !args.quiet {
                println!(
                    "healthy: {} (after {})",
                    args.url,
                    humantime::format_duration(Duration::from_millis(
                        started.elapsed().as_millis() as u64
                    ))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(reason) => Err(CliError::failure(format!(
            "{} did not become healthy within {} (last probe: {reason})",
            args.url,
            humantime::format_duration(args.timeout)
        ))),
    }
}
