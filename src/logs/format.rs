//! One record ⇄ one line: `<RFC 3339 UTC, microseconds> <instance> <out|err> <message>`.
//!
//! Writing sanitises (no newline inside a message, trailing `\r` trimmed, invalid UTF-8
//! replaced, no spaces in the instance id) so every line written parses back. Reading is
//! tolerant: [`RecordParser`] never fails on a line it does not understand (a hand edit, a
//! write cut short by a full disk); it keeps the text as a record that inherits the time,
//! instance and stream of the record before it, so it stays where it was in the output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{LogRecord, Stream};

/// The latest time RFC 3339 (and humantime) can print: 9999-12-31T23:59:59.999999Z.
const MAX_SECONDS: u64 = 253_402_300_799;

/// Formats `time` as RFC 3339 UTC with microseconds. Times outside 1970..=9999 are clamped
/// (humantime would panic on them).
pub fn format_time(time: SystemTime) -> String {
    let max = UNIX_EPOCH + Duration::new(MAX_SECONDS, 999_999_000);
    let clamped = time.clamp(UNIX_EPOCH, max);
    humantime::format_rfc3339_micros(clamped).to_string()
}

/// The full log line for one record, newline included.
///
/// `message` should hold no `\n` ([`super::ServiceLog::append`] splits on them first); any
/// left are replaced by spaces so one record stays one line.
pub fn format_line(time: SystemTime, instance: &str, stream: Stream, message: &[u8]) -> Vec<u8> {
    let mut batch = RecordBatch::new(instance, stream);
    batch.start(time);
    batch.push(message);
    batch.bytes
}

/// Records of one instance and stream that go out in one write, formatted as [`format_line`]
/// does: the capture fills one per read, so a flood costs one write (and one clock reading
/// and timestamp formatting) per read of the pipe, not per line.
#[derive(Debug)]
pub struct RecordBatch {
    /// `<instance> <stream> `: the part of every line after the time.
    tail: Vec<u8>,
    /// `<time> <instance> <stream> `, set by [`RecordBatch::start`].
    prefix: Vec<u8>,
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl RecordBatch {
    /// An empty batch for `instance`'s `stream`; [`RecordBatch::start`] it before pushing.
    pub fn new(instance: &str, stream: Stream) -> Self {
        let mut tail = clean_instance(instance).into_bytes();
        tail.push(b' ');
        tail.extend_from_slice(stream.as_str().as_bytes());
        tail.push(b' ');
        RecordBatch {
            tail,
            prefix: Vec::new(),
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Gives back the memory a burst of output grew the batch to: an idle stream holds none.
    pub fn release(&mut self) {
        self.bytes = Vec::new();
        self.ends = Vec::new();
    }

    /// Empties the batch; the records pushed from now on are stamped with `time`.
    pub fn start(&mut self, time: SystemTime) {
        self.bytes.clear();
        self.ends.clear();
        self.prefix.clear();
        self.prefix.extend_from_slice(format_time(time).as_bytes());
        self.prefix.push(b' ');
        self.prefix.extend_from_slice(&self.tail);
    }

    /// Adds one record (see [`format_line`] for how `message` is cleaned).
    pub fn push(&mut self, message: &[u8]) {
        let message = message.strip_suffix(b"\r").unwrap_or(message);
        let message = String::from_utf8_lossy(message);
        self.bytes.extend_from_slice(&self.prefix);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(message.as_bytes());
        for byte in &mut self.bytes[start..] {
            if *byte == b'\n' {
                *byte = b' ';
            }
        }
        self.bytes.push(b'\n');
        self.ends.push(self.bytes.len());
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The formatted lines, one after the other.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where each record ends in [`RecordBatch::bytes`], in order.
    pub fn ends(&self) -> &[usize] {
        &self.ends
    }
}

/// Instance ids are one word: whitespace and control characters become `_`, empty is `-`.
fn clean_instance(instance: &str) -> String {
    if instance.is_empty() {
        return "-".to_string();
    }
    instance
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Parses one line (without its `\n`) written by [`format_line`]; `None` when it is not one.
pub fn parse_line(line: &str) -> Option<LogRecord> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.splitn(4, ' ');
    let timestamp = humantime::parse_rfc3339(parts.next()?).ok()?;
    let instance = parts.next().filter(|s| !s.is_empty())?;
    let stream = Stream::parse(parts.next()?)?;
    let message = parts.next().unwrap_or("");
    Some(LogRecord {
        timestamp,
        instance: instance.to_string(),
        stream,
        message: message.to_string(),
    })
}

/// Parses the lines of one file in order, keeping lines that do not parse (see the module
/// doc). Lines before any valid record get the epoch as time and `?` as instance.
#[derive(Debug, Default, Clone)]
pub struct RecordParser {
    last: Option<(SystemTime, String, Stream)>,
}

impl RecordParser {
    pub fn new() -> Self {
        RecordParser::default()
    }

    /// Parses `line` (raw bytes, without its `\n`); never fails.
    pub fn parse(&mut self, line: &[u8]) -> LogRecord {
        let text = String::from_utf8_lossy(line);
        if let Some(record) = parse_line(&text) {
            self.last = Some((record.timestamp, record.instance.clone(), record.stream));
            return record;
        }
        let (timestamp, instance, stream) =
            self.last
                .clone()
                .unwrap_or((UNIX_EPOCH, "?".to_string(), Stream::Out));
        let message = text.strip_suffix('\r').unwrap_or(&text).to_string();
        LogRecord {
            timestamp,
            instance,
            stream,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(micros)
    }

    #[test]
    fn round_trips() {
        let cases: &[(&str, Stream, &[u8], &str)] = &[
            ("web-1", Stream::Out, b"hello world", "hello world"),
            ("web-1", Stream::Err, b"", ""),
            ("api-2", Stream::Out, b"  spaced  out ", "  spaced  out "),
            ("api-2", Stream::Out, b"crlf\r", "crlf"),
            ("a b", Stream::Err, b"x", "x"),
            ("", Stream::Out, b"x", "x"),
            ("w", Stream::Out, b"bad \xff utf8", "bad \u{fffd} utf8"),
            ("w", Stream::Out, b"two\nlines", "two lines"),
        ];
        for (i, (instance, stream, message, expected)) in cases.iter().enumerate() {
            let time = at(1_700_000_000_123_456 + i as u64);
            let line = format_line(time, instance, *stream, message);
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            let text = std::str::from_utf8(&line).unwrap();
            let record = parse_line(text.strip_suffix('\n').unwrap()).unwrap();
            assert_eq!(record.timestamp, time, "case {i}");
            assert_eq!(record.stream, *stream, "case {i}");
            assert_eq!(record.message, *expected, "case {i}");
            assert!(!record.instance.contains(' ') && !record.instance.is_empty());
        }
    }

    #[test]
    fn format_is_rfc3339_micros() {
        let line = format_line(at(1_500_000), "web-1", Stream::Out, b"hi");
        assert_eq!(line, b"1970-01-01T00:00:01.500000Z web-1 out hi\n");
    }

    #[test]
    fn out_of_range_times_do_not_panic() {
        let early = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(format_time(early), "1970-01-01T00:00:00.000000Z");
        let late = UNIX_EPOCH + Duration::from_secs(MAX_SECONDS * 2);
        assert_eq!(format_time(late), "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn rejects_garbage() {
        for line in [
            "",
            "hello",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z web-1",
            "2024-01-01T00:00:00Z web-1 bogus hi",
            "2024-13-01T00:00:00Z web-1 out hi",
            "2024-01-01T00:00:00Z  out hi",
            "ééééééééééééééééééééééééé",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn parser_keeps_garbage_in_place() {
        let mut parser = RecordParser::new();
        let orphan = parser.parse(b"before anything");
        assert_eq!(
            (orphan.timestamp, orphan.instance.as_str()),
            (UNIX_EPOCH, "?")
        );
        let good = parser.parse(b"2024-01-01T00:00:00.000001Z web-1 err boom");
        let junk = parser.parse(b"  at frame \xfe\r");
        assert_eq!(junk.timestamp, good.timestamp);
        assert_eq!(junk.instance, "web-1");
        assert_eq!(junk.stream, Stream::Err);
        assert_eq!(junk.message, "  at frame \u{fffd}");
    }
}
