//! `servio init`: writes a starter services.toml from templates/ (never overwrites).

use std::process::ExitCode;

use clap::Args;

use crate::error::CliResult;

#[derive(Debug, Args)]
pub struct InitArgs {}

pub fn run(_args: InitArgs) -> CliResult<ExitCode> {
    todo!("init")
}
