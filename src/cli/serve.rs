//! `servio serve menu|inventory|order`: runs one platform service on $PORT.

use std::process::ExitCode;

use clap::Args;

use crate::error::{CliError, CliResult};
use crate::services::Kind;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which service to run
    pub kind: Kind,
}

pub fn run(args: ServeArgs) -> CliResult<ExitCode> {
    super::runtime()?
        .block_on(crate::services::serve(args.kind))
        .map_err(CliError::Failure)?;
    Ok(ExitCode::SUCCESS)
}
