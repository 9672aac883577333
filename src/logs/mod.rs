//! Captured service output: one file per service, `.servio/logs/<service>.log`, one record
//! per line (`<RFC 3339 time> <instance> <out|err> <message>`), rotated by size.
//!
//! The daemon writes through [`ServiceLog`] (fed by [`capture`]); `servio logs` and `up`'s
//! failure report read back through [`read_records`], [`Follower`] and [`Renderer`].
//!
//! # Layout
//!
//! - `format`: one record ⇄ one line, [`RecordBatch`] of them, and the tolerant [`RecordParser`].
//! - `writer`: [`ServiceLog`], the rotating append-only writer.
//! - `capture`: a child's pipe → bounded lines → [`ServiceLog::append_batch`].
//! - [`pipe`]: the named pipes instances write into, which outlive a crashed daemon.
//! - `reader`: rotated files, oldest first, then the live file.
//! - `select`: pure merge / `--since` / `--tail` over records.
//! - `follow`: [`Follower`], `tail -F` over one log path.
//! - `changes`: [`LogChanges`], which wakes a follower when its files change.
//! - `render`: [`Renderer`], the `instance | message` output of `servio logs`.

mod capture;
mod changes;
mod follow;
mod format;
pub mod pipe;
mod reader;
mod render;
mod select;
mod writer;

use std::time::SystemTime;

pub use capture::{LineSplitter, MAX_LINE, capture};
pub use changes::LogChanges;
pub use follow::Follower;
pub use format::{RecordBatch, RecordParser, format_line, format_time, parse_line};
pub use reader::{log_files, read_file, read_records, read_rotated};
pub use render::Renderer;
pub use select::{cutoff, merge, select, tail};
pub use writer::ServiceLog;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    /// The tag written in the log line: `out` or `err`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }

    /// The inverse of [`Stream::as_str`].
    pub fn parse(tag: &str) -> Option<Stream> {
        match tag {
            "out" => Some(Stream::Out),
            "err" => Some(Stream::Err),
            _ => None,
        }
    }
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub timestamp: SystemTime,
    pub instance: String,
    pub stream: Stream,
    pub message: String,
}
