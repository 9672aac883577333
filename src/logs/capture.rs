//! A child's stdout/stderr pipe → bounded lines → [`ServiceLog::append_batch`].
//!
//! [`LineSplitter`] is the pure part: bytes in, lines out, with memory bounded by
//! [`MAX_LINE`] plus one read buffer (and its formatted batch) whatever the child writes; a
//! quiet stream holds a 1 KiB buffer and nothing else. A line longer than
//! [`MAX_LINE`] becomes several records (cut on a UTF-8 boundary when one is near), and a last
//! line without a newline is still emitted at end of input.
//!
//! [`capture`] writes the lines of each read together, stamped with the time of that read:
//! one write per read of the pipe however short the lines, and nothing waits in memory for
//! more output (a line reaches the file as soon as its newline was read).

use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::format::RecordBatch;
use super::{ServiceLog, Stream};

/// The longest record a captured line becomes; longer lines are cut into pieces this long.
pub const MAX_LINE: usize = 16 * 1024;

/// Bytes read from the pipe per call during a burst: a whole pipe buffer (64 KiB on Linux).
const READ_CHUNK: usize = 64 * 1024;
/// Bytes read per call while the pipe is quiet: what waits for output is this small, so a
/// stack of 200 services holds no 64 KiB buffer per stream for output that does not come.
const IDLE_READ: usize = 1024;

/// Splits a byte stream into lines of at most `max` bytes, without the `\n`.
#[derive(Debug)]
pub struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(MAX_LINE)
    }
}

impl LineSplitter {
    /// A splitter cutting lines at `max` bytes (at least 4, to fit any UTF-8 character).
    pub fn new(max: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max: max.max(4),
        }
    }

    /// Feeds `data`, calling `emit` for every line it completes.
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while let Some(newline) = data.iter().position(|&b| b == b'\n') {
            self.extend(&data[..newline], emit);
            emit(&self.pending);
            self.pending.clear();
            data = &data[newline + 1..];
        }
        self.extend(data, emit);
    }

    /// Gives back memory a long line grew the pending part to, keeping the part itself.
    pub fn release(&mut self) {
        self.pending.shrink_to_fit();
    }

    /// Ends the input: emits the unterminated last line, if any.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }

    /// Adds part of a line; emits `max`-byte pieces while the line is known to be longer.
    /// (Exactly `max` bytes wait: the next byte may be the newline ending it.)
    fn extend(&mut self, part: &[u8], emit: &mut impl FnMut(&[u8])) {
        self.pending.extend_from_slice(part);
        let mut start = 0;
        while self.pending.len() - start > self.max {
            let cut = start + utf8_cut(&self.pending[start..], self.max);
            emit(&self.pending[start..cut]);
            start = cut;
        }
        self.pending.drain(..start);
    }
}

/// Where to cut `bytes` (longer than `max`) so no UTF-8 character is split: `max`, moved back
/// over at most 3 continuation bytes.
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| i > 0 && !is_continuation(bytes[i]))
        .unwrap_or(max)
}

/// Reads `reader` to its end, appending each line (bounded in length) to `log`.
///
/// A read error ends the capture like end of input does (after a warning): the child's
/// output is lost from then on, but the supervisor is not disturbed.
pub async fn capture(
    mut reader: impl AsyncRead + Unpin,
    instance: String,
    stream: Stream,
    log: ServiceLog,
) {
    let mut splitter = LineSplitter::default();
    let mut batch = RecordBatch::new(&instance, stream);
    let mut idle = [0u8; IDLE_READ];
    // Allocated when a read fills the idle buffer (a burst), dropped when one drains the
    // pipe (quiet again).
    let mut burst: Vec<u8> = Vec::new();
    loop {
        let buf: &mut [u8] = if burst.is_empty() {
            &mut idle
        } else {
            &mut burst
        };
        match reader.read(buf).await {
            Ok(0) => break,
            Ok(n) => {
                let filled = n == buf.len();
                write_lines(&mut batch, &log, |batch| {
                    splitter.push(&buf[..n], &mut |line| batch.push(line))
                });
                if filled {
                    burst.resize(READ_CHUNK, 0);
                } else {
                    burst = Vec::new();
                    batch.release();
                    splitter.release();
                }
                // A pipe that is never empty never makes this task wait: let the other
                // captures (and the rest of the daemon) run between two reads, so a flood
                // does not hold back another service's lines.
                tokio::task::yield_now().await;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(%instance, "cannot read the {} pipe: {e}", stream.as_str());
                break;
            }
        }
    }
    write_lines(&mut batch, &log, |batch| {
        splitter.finish(&mut |line| batch.push(line))
    });
}

/// Stamps the lines `fill` pushes with the time now and writes them in one go.
fn write_lines(batch: &mut RecordBatch, log: &ServiceLog, fill: impl FnOnce(&mut RecordBatch)) {
    batch.start(SystemTime::now());
    fill(batch);
    if !batch.is_empty() {
        log.append_batch(batch);
    }
}

#[cfg(test)]
#[path = "capture_tests.rs"]
mod tests;
