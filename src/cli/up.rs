//! `servio up`.

use std::process::ExitCode;

use clap::Args;

use crate::error::CliResult;

#[derive(Debug, Args)]
pub struct UpArgs {}

pub fn run(_args: UpArgs) -> CliResult<ExitCode> {
    todo!("up")
}
