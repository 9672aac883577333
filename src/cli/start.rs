//! `servio start [SERVICE...]`: starts the named services (all when none is named) and
//! their dependencies where they do not run, without re-reading the manifest for changes
//! (that is `up`'s job), and waits until they are healthy.

use std::process::ExitCode;

use clap::Args;

use super::ManifestArg;
use super::apply::{self, Summary, WaitArgs};
use crate::error::CliResult;
use crate::protocol::Intent;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Services to start, with their dependencies [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub fn run(args: StartArgs) -> CliResult<ExitCode> {
    let intent = Intent::Start {
        services: args.services,
    };
    apply::run_verb(&args.manifest, intent, &args.wait, Summary::Healthy)
}
