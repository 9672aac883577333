//! `servio config`: validates the manifest and prints it resolved (environment redacted).

use std::process::ExitCode;

use clap::Args;

use super::ManifestArg;
use crate::error::CliResult;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Print JSON instead of TOML
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: ConfigArgs) -> CliResult<ExitCode> {
    todo!("config")
}
