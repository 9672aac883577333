//! `servio logs`: reads the captured log files, so it works after `down` too.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::error::CliResult;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Services to show [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Keep printing new lines as they are written (across rotation and new instances)
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show only the last N lines
    #[arg(short = 'n', long = "tail", value_name = "N")]
    pub lines: Option<usize>,
    /// Show only lines newer than this, like "10m" or "30s"
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub since: Option<Duration>,
    /// Prefix each line with its timestamp
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Path to the manifest [default: services.toml in this folder or the nearest parent]
    #[arg(long = "file", value_name = "PATH", env = "SERVIO_FILE")]
    pub file: Option<PathBuf>,
}

pub fn run(_args: LogsArgs) -> CliResult<ExitCode> {
    todo!("logs")
}
