//! `servio stop [SERVICE...]`: stops the named services (all when none is named), each
//! instance drained first; the daemon keeps running and `start` or `up` brings them back.
//! A service others depend on is only stopped with `--with-dependents`, which stops them
//! first.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::ManifestArg;
use super::apply::{self, Summary, WaitArgs};
use crate::error::CliResult;
use crate::protocol::Intent;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Services to stop [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Also stop the running services that depend on them (first)
    #[arg(long)]
    pub with_dependents: bool,
    /// Grace period before SIGKILL [default: each service's stop.timeout]
    #[arg(long = "grace", value_name = "DURATION", value_parser = super::parse_duration)]
    pub grace: Option<Duration>,
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub fn run(args: StopArgs) -> CliResult<ExitCode> {
    let began = Instant::now();
    let (manifest, connection) = args.manifest.connect()?;
    let intent = Intent::Stop {
        services: args.services,
        with_dependents: args.with_dependents,
        timeout_ms: args.grace.map(|t| t.as_millis() as u64),
    };
    apply::run(
        connection,
        &manifest,
        intent,
        &args.wait,
        Summary::Done("stopped"),
        began,
    )
}
