//! `servio status`.

use std::process::ExitCode;

use clap::Args;

use crate::error::CliResult;

#[derive(Debug, Args)]
pub struct StatusArgs {}

pub fn run(_args: StatusArgs) -> CliResult<ExitCode> {
    todo!("status")
}
