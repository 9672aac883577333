//! [`Follower`]: `tail -F` over one log path, polled by the caller.
//!
//! Each [`Follower::poll`] returns the complete lines written since the last one. The file is
//! kept open, so when the writer rotates (`x.log` → `x.log.1`, new `x.log`) the follower
//! first drains what was appended to the old file, then reads the new one from its start. A
//! shrinking file (truncated in place) is read again from the start. A path that does not
//! exist yet is picked up when it appears. If the writer rotates more than once between two
//! polls, the files in between are not shown (the follower only knows the two ends).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::LogRecord;
use super::capture::LineSplitter;
use super::format::RecordParser;

/// A line longer than this without a newline is shown in pieces rather than buffered.
const MAX_PENDING: usize = 1024 * 1024;

/// Follows the log file at one path across rotation, truncation and (re)creation.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    /// The open file and its (device, inode).
    file: Option<(File, (u64, u64))>,
    offset: u64,
    splitter: LineSplitter,
    parser: RecordParser,
}

impl Follower {
    /// A follower of `path` that will read it from its start (the file may not exist yet).
    pub fn new(path: &Path) -> Self {
        Follower {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            splitter: LineSplitter::new(MAX_PENDING),
            parser: RecordParser::new(),
        }
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records of every line completed since the last poll, in file order.
    pub fn poll(&mut self) -> io::Result<Vec<LogRecord>> {
        let mut out = Vec::new();
        let on_disk = identity(&self.path)?;
        if let Some((_, open_id)) = self.file {
            if on_disk != Some(open_id) {
                // Rotated away, replaced or deleted: finish the old file first.
                self.read_new(&mut out)?;
                if on_disk.is_some() {
                    self.switch(&mut out);
                }
            }
        }
        if self.file.is_none() {
            if on_disk.is_none() {
                return Ok(out);
            }
            let file = match File::open(&self.path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            };
            let meta = file.metadata()?;
            self.file = Some((file, (meta.dev(), meta.ino())));
            self.offset = 0;
        }
        if let Some((file, _)) = &mut self.file {
            if file.metadata()?.len() < self.offset {
                file.seek(SeekFrom::Start(0))?;
                self.offset = 0;
                self.splitter = LineSplitter::new(MAX_PENDING);
            }
        }
        self.read_new(&mut out)?;
        Ok(out)
    }

    /// Leaves the current file: an unterminated last line is shown as it is.
    fn switch(&mut self, out: &mut Vec<LogRecord>) {
        let parser = &mut self.parser;
        self.splitter
            .finish(&mut |line| out.push(parser.parse(line)));
        self.file = None;
        self.offset = 0;
    }

    /// Reads the open file from the current offset to its end.
    fn read_new(&mut self, out: &mut Vec<LogRecord>) -> io::Result<()> {
        let Some((file, _)) = &mut self.file else {
            return Ok(());
        };
        let parser = &mut self.parser;
        let mut emit = |line: &[u8]| {
            if !line.is_empty() {
                out.push(parser.parse(line));
            }
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.offset += n as u64;
            self.splitter.push(&buf[..n], &mut emit);
        }
    }
}

/// (device, inode) of the file at `path`, `None` when there is none.
fn identity(path: &Path) -> io::Result<Option<(u64, u64)>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
