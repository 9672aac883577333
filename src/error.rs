//! Exit codes and the one error type the CLI reports: every failure maps to a code here.

use std::process::ExitCode;

/// Success.
pub const EXIT_OK: u8 = 0;
/// A runtime failure: a service did not become healthy, the daemon is unreachable, I/O failed.
pub const EXIT_FAILURE: u8 = 1;
/// The command line or the manifest is wrong: fix the input and run again.
pub const EXIT_USAGE: u8 = 2;

/// An error that ends a CLI command, carrying the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags, unknown service names, manifest errors: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything that went wrong while doing the work: exit 1.
    #[error("{0:#}")]
    Failure(#[from] anyhow::Error),
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    pub fn failure(message: impl Into<String>) -> Self {
        CliError::Failure(anyhow::anyhow!(message.into()))
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(EXIT_USAGE),
            CliError::Failure(_) => ExitCode::from(EXIT_FAILURE),
        }
    }
}

impl From<crate::manifest::ManifestErrors> for CliError {
    fn from(errors: crate::manifest::ManifestErrors) -> Self {
        CliError::Usage(errors.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::Failure(error.into())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
