//! [`ServiceLog`]: the append-only, size-rotated writer of one service's log file.
//!
//! Every instance of a service appends through clones of one handle, so records never
//! interleave mid-line and rotation happens in one place. Rotation runs *before* a write that
//! would take the live file past `max_size`: `x.log.(k)` → `x.log.(k+1)` down to `.1` (the
//! oldest, `.max_files`, is overwritten and so dropped), then `x.log` → `x.log.1`, then a new
//! `x.log`. A record larger than `max_size` still goes out whole, into a file of its own.
//! A [`RecordBatch`] goes out in as few writes as these rules allow: one, unless it rotates.
//!
//! Writing never panics and never returns an error: the daemon must keep supervising even
//! when the disk is full. A failure is reported once through `tracing::warn!` (again only
//! after a write has succeeded in between) and the record is dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::Stream;
use super::format::RecordBatch;
use super::reader::rotated_path;
use crate::manifest::LogPolicy;

/// A cheap-to-clone handle on one service's log file; every instance of the service appends
/// through it, so lines never interleave mid-line and rotation happens in one place.
#[derive(Debug, Clone)]
pub struct ServiceLog {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    policy: LogPolicy,
    /// `None` after a failed reopen; retried on the next append.
    file: Option<File>,
    /// Bytes in the live file, as far as this writer knows.
    size: u64,
    /// A failure has been reported and nothing has succeeded since: stay quiet.
    failing: bool,
    /// Never report through tracing: this file is where tracing itself writes.
    silent: bool,
}

impl ServiceLog {
    /// Opens (creating it and its parent folders) the live log file at `path` for appending.
    pub fn open(path: &Path, policy: LogPolicy) -> io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        let inner = Inner {
            path: path.to_path_buf(),
            policy,
            file: Some(file),
            size,
            failing: false,
            silent: false,
        };
        Ok(ServiceLog {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// A rotating file for already formatted text (the daemon's own log): [`write_raw`]
    /// appends bytes as they are, and failures are dropped silently, since tracing, the
    /// usual place to report them, writes here.
    ///
    /// [`write_raw`]: ServiceLog::write_raw
    pub fn open_raw(path: &Path, policy: LogPolicy) -> io::Result<Self> {
        let log = ServiceLog::open(path, policy)?;
        log.lock().silent = true;
        Ok(log)
    }

    /// Appends `bytes` unchanged, rotating first when needed.
    pub fn write_raw(&self, bytes: &[u8]) {
        self.lock().write(bytes);
    }

    /// The live file this handle writes.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Appends one record (the message has no trailing newline), rotating first when needed.
    ///
    /// A message holding `\n` becomes one record per line (a trailing `\n` is ignored); each
    /// line has a trailing `\r` trimmed and invalid UTF-8 replaced. They go out together, as
    /// [`ServiceLog::append_batch`] writes them.
    pub fn append(&self, instance: &str, stream: Stream, message: &[u8]) {
        let message = message.strip_suffix(b"\n").unwrap_or(message);
        let mut batch = RecordBatch::new(instance, stream);
        batch.start(SystemTime::now());
        for line in message.split(|&b| b == b'\n') {
            batch.push(line);
        }
        self.append_batch(&batch);
    }

    /// Appends every record of `batch`, in order, rotating between two records where the
    /// next would take the live file past `max_size` (as appending them one by one would).
    pub fn append_batch(&self, batch: &RecordBatch) {
        self.lock().write_records(batch.bytes(), batch.ends());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` inconsistent in a way that
        // matters (worst case: a stale size), so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Writes the records of `bytes` (each ending at one of `ends`) in groups that each fit
    /// the live file, so rotation falls between the same records as with one write each.
    fn write_records(&mut self, bytes: &[u8], ends: &[usize]) {
        let mut start = 0;
        let mut cut = 0;
        for &end in ends {
            let fits = self.size.saturating_add((end - start) as u64) <= self.policy.max_size;
            if !fits && cut > start {
                self.write(&bytes[start..cut]);
                start = cut;
            }
            cut = end;
        }
        if cut > start {
            self.write(&bytes[start..cut]);
        }
    }

    fn write(&mut self, buf: &[u8]) {
        let len = buf.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.policy.max_size {
            if let Err(e) = self.rotate() {
                self.report("rotate", &e);
            }
        }
        if self.file.is_none() {
            match self.reopen() {
                Ok(()) => {}
                Err(e) => return self.report("reopen", &e),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(buf) {
            Ok(()) => {
                self.size = self.size.saturating_add(len);
                self.failing = false;
            }
            Err(e) => self.report("write", &e),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let keep = self.policy.max_files;
        if keep == 0 {
            ignore_missing(std::fs::remove_file(&self.path))?;
        } else {
            for k in (1..keep).rev() {
                let from = rotated_path(&self.path, k);
                ignore_missing(std::fs::rename(&from, rotated_path(&self.path, k + 1)))?;
            }
            ignore_missing(std::fs::rename(&self.path, rotated_path(&self.path, 1)))?;
        }
        self.reopen()
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = open_append(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn report(&mut self, action: &str, error: &io::Error) {
        if !self.failing && !self.silent {
            tracing::warn!(
                path = %self.path.display(),
                "cannot {action} the service log ({error}); dropping output until it works again"
            );
            self.failing = true;
        }
    }
}

/// Opens (creating, readable only by the owner: output may hold anything) for appending.
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
