//! Captured service output: one file per service, `.servio/logs/<service>.log`, one record
//! per line (`<RFC 3339 time> <instance> <out|err> <message>`), rotated by size.
//!
//! The daemon writes through [`ServiceLog`]; `servio logs` and `up`'s failure report read
//! back through [`read_records`].

use std::path::Path;
use std::time::SystemTime;

use crate::manifest::LogPolicy;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub timestamp: SystemTime,
    pub instance: String,
    pub stream: Stream,
    pub message: String,
}

/// A cheap-to-clone handle on one service's log file; every instance of the service appends
/// through it, so lines never interleave mid-line and rotation happens in one place.
#[derive(Debug, Clone)]
pub struct ServiceLog {}

impl ServiceLog {
    pub fn open(path: &Path, policy: LogPolicy) -> std::io::Result<Self> {
        let _ = (path, policy);
        todo!("ServiceLog::open")
    }

    /// Appends one record (the message has no trailing newline), rotating first when needed.
    pub fn append(&self, instance: &str, stream: Stream, message: &[u8]) {
        let _ = (instance, stream, message);
        todo!("ServiceLog::append")
    }
}

/// Reads `reader` to its end, appending each line (bounded in length) to `log`.
pub async fn capture(
    reader: impl tokio::io::AsyncRead + Unpin,
    instance: String,
    stream: Stream,
    log: ServiceLog,
) {
    let _ = (reader, instance, stream, log);
    todo!("logs::capture")
}

/// Every record of a service's log, oldest first, including rotated files.
pub fn read_records(path: &Path) -> std::io::Result<Vec<LogRecord>> {
    let _ = path;
    todo!("logs::read_records")
}
