//! `servio restart [SERVICE...]`: a rolling restart of the named services (all when none
//! is named), one instance at a time: a replacement starts, becomes healthy and takes
//! traffic before the old instance is drained and stopped, so the gateway keeps answering.

use std::process::ExitCode;

use clap::Args;

use super::ManifestArg;
use super::apply::{self, Summary, WaitArgs};
use crate::error::CliResult;
use crate::protocol::Intent;

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Services to restart [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub fn run(args: RestartArgs) -> CliResult<ExitCode> {
    let intent = Intent::Restart {
        services: args.services,
    };
    apply::run_verb(
        &args.manifest,
        intent,
        &args.wait,
        Summary::Done("restarted"),
    )
}
