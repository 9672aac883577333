//! `servio stop [SERVICE...]`: stops the named services (all when none is named), each
//! instance drained first; the daemon keeps running and `start` or `up` brings them back.
//! A service others depend on is only stopped with `--with-dependents`, which stops them
//! first.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::ManifestArg;
use super::apply::{self, OutputArgs, Summary, WaitArgs};
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
    #[arg(short, long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: StopArgs) -> CliResult<ExitCode> {
    let intent = Intent::Stop {
        services: args.services,
        with_dependents: args.with_dependents,
        timeout_ms: args.timeout.map(|t| t.as_millis() as u64),
    };
    let wait = WaitArgs::output_only(args.output);
    apply::run_verb(&args.manifest, intent, &wait, Summary::Done("stopped"))
}
