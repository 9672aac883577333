//! `servio daemon_cmd`.

use std::process::ExitCode;

use clap::Args;

use crate::error::CliResult;

#[derive(Debug, Args)]
pub struct DaemonArgs {}

pub fn run(_args: DaemonArgs) -> CliResult<ExitCode> {
    todo!("daemon_cmd")
}
