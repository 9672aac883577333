//! Reading a service's log back: the rotated files `x.log.N` … `x.log.1` (oldest first),
//! then the live `x.log`.
//!
//! A missing file is simply empty (a service that never ran, or a rotation racing the read).
//! Lines that do not parse are kept, as described in `format` ([`super::RecordParser`]); a
//! last line without its newline (a write in progress, or a crash) is kept too. Empty lines
//! carry nothing (the writer never produces one) and are skipped.

use std::io;
use std::path::{Path, PathBuf};

use super::LogRecord;
use super::format::RecordParser;

/// `x.log` → `x.log.k`.
pub(crate) fn rotated_path(path: &Path, k: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

/// The existing rotated files of `path`, oldest first (`.N` … `.1`). The scan stops at the
/// first gap, as rotation never leaves one.
fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for k in 1..=u32::MAX {
        let candidate = rotated_path(path, k);
        if !candidate.is_file() {
            break;
        }
        files.push(candidate);
    }
    files.reverse();
    files
}

/// Every existing file of the log at `path`, oldest first: rotated ones, then the live one.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files = rotated_files(path);
    if path.is_file() {
        files.push(path.to_path_buf());
    }
    files
}

/// Every record of a service's log, oldest first, including rotated files.
pub fn read_records(path: &Path) -> io::Result<Vec<LogRecord>> {
    let mut parser = RecordParser::new();
    let mut records = Vec::new();
    for file in log_files(path) {
        read_file(&file, &mut parser, &mut records)?;
    }
    Ok(records)
}

/// The records of the rotated files only (`servio logs -f` reads the live file itself).
pub fn read_rotated(path: &Path) -> io::Result<Vec<LogRecord>> {
    let mut parser = RecordParser::new();
    let mut records = Vec::new();
    for file in rotated_files(path) {
        read_file(&file, &mut parser, &mut records)?;
    }
    Ok(records)
}

/// Appends the records of one file to `out`; a missing file adds nothing.
pub fn read_file(
    path: &Path,
    parser: &mut RecordParser,
    out: &mut Vec<LogRecord>,
) -> io::Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let lines = bytes.split(|&b| b == b'\n').filter(|line| !line.is_empty());
    out.extend(lines.map(|line| parser.parse(line)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::logs::{Stream, format_line};

    fn line(secs: u64, instance: &str, message: &str) -> Vec<u8> {
        let time = UNIX_EPOCH + Duration::from_secs(secs);
        format_line(time, instance, Stream::Out, message.as_bytes())
    }

    fn messages(records: &[LogRecord]) -> Vec<&str> {
        records.iter().map(|r| r.message.as_str()).collect()
    }

    #[test]
    fn reads_rotated_files_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("web.log");
        std::fs::write(rotated_path(&live, 2), line(1, "web-1", "one")).unwrap();
        std::fs::write(rotated_path(&live, 1), line(2, "web-1", "two")).unwrap();
        std::fs::write(
            &live,
            [line(3, "web-1", "three"), line(4, "web-2", "four")].concat(),
        )
        .unwrap();
        // A stale file past a gap is not part of the log.
        std::fs::write(rotated_path(&live, 4), line(0, "web-1", "stale")).unwrap();

        let records = read_records(&live).unwrap();
        assert_eq!(messages(&records), ["one", "two", "three", "four"]);
        assert_eq!(records[3].instance, "web-2");
        assert_eq!(messages(&read_rotated(&live).unwrap()), ["one", "two"]);
        assert_eq!(log_files(&live).len(), 3);
    }

    #[test]
    fn missing_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_records(&dir.path().join("nope.log"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn keeps_garbage_and_unterminated_lines() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("web.log");
        std::fs::write(rotated_path(&live, 1), line(5, "web-1", "first")).unwrap();
        let mut body = b"continued \xff\n".to_vec();
        body.extend(line(6, "web-2", "second"));
        body.extend(b"\n2024-01-01T00:00:00.000000Z web-2 out half");
        std::fs::write(&live, body).unwrap();

        let records = read_records(&live).unwrap();
        assert_eq!(
            messages(&records),
            ["first", "continued \u{fffd}", "second", "half"]
        );
        // Garbage inherits the record before it, across the file boundary.
        assert_eq!(records[1].instance, "web-1");
        assert_eq!(records[1].timestamp, records[0].timestamp);
        assert_eq!(records[3].instance, "web-2");
    }

    #[test]
    fn empty_and_blank_files() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("web.log");
        std::fs::write(&live, b"").unwrap();
        assert!(read_records(&live).unwrap().is_empty());
        std::fs::write(&live, b"\n").unwrap();
        assert!(read_records(&live).unwrap().is_empty());
    }
}
