//! `servio down`.

use std::process::ExitCode;

use clap::Args;

use crate::error::CliResult;

#[derive(Debug, Args)]
pub struct DownArgs {}

pub fn run(_args: DownArgs) -> CliResult<ExitCode> {
    todo!("down")
}
