//! Tests of [`ServiceLog`]: record splitting, rotation bounds and order, sharing between
//! clones, and write failures that must not panic.

use std::path::Path;

use super::*;
use crate::logs::read_records;

fn policy(max_size: u64, max_files: u32) -> LogPolicy {
    LogPolicy {
        max_size,
        max_files,
    }
}

/// (number of files, total bytes) in `dir`.
fn dir_usage(dir: &Path) -> (usize, u64) {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    let bytes = entries.iter().map(|e| e.metadata().unwrap().len()).sum();
    (entries.len(), bytes)
}

#[test]
fn open_creates_parent_folders_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/web.log");
    let log = ServiceLog::open(&path, LogPolicy::default()).unwrap();
    log.append("web-1", Stream::Out, b"one");
    drop(log);
    let log = ServiceLog::open(&path, LogPolicy::default()).unwrap();
    log.clone().append("web-1", Stream::Err, b"two");
    assert_eq!(log.path(), path);

    let records = read_records(&path).unwrap();
    let got: Vec<_> = records
        .iter()
        .map(|r| (r.stream, r.message.as_str()))
        .collect();
    assert_eq!(got, [(Stream::Out, "one"), (Stream::Err, "two")]);
}

#[test]
fn append_splits_lines_and_trims_carriage_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let log = ServiceLog::open(&path, LogPolicy::default()).unwrap();
    log.append("web-1", Stream::Out, b"a\r\nb\n\nc\r\n");
    log.append("web-1", Stream::Out, b"");
    let records = read_records(&path).unwrap();
    let got: Vec<_> = records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got, ["a", "b", "", "c", ""]);
}

#[test]
fn rotation_stays_bounded_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let (max_size, max_files) = (300, 3);
    let log = ServiceLog::open(&path, policy(max_size, max_files)).unwrap();
    let total = 400;
    for i in 0..total {
        log.append("web-1", Stream::Out, format!("line {i:04}").as_bytes());
        let (files, bytes) = dir_usage(dir.path());
        assert!(
            files <= max_files as usize + 1,
            "{files} files after line {i}"
        );
        assert!(
            bytes <= max_size * (u64::from(max_files) + 1),
            "{bytes} bytes"
        );
    }
    for file in crate::logs::log_files(&path) {
        assert!(std::fs::metadata(&file).unwrap().len() <= max_size);
    }
    assert_eq!(dir_usage(dir.path()).0, max_files as usize + 1);

    // What is left is the newest lines, consecutive and in order.
    let records = read_records(&path).unwrap();
    assert!(records.len() > 3 * (max_size as usize / 60));
    let numbers: Vec<usize> = records
        .iter()
        .map(|r| r.message["line ".len()..].parse().unwrap())
        .collect();
    let first = total - numbers.len();
    assert_eq!(numbers, (first..total).collect::<Vec<_>>());
}

#[test]
fn no_rotated_files_when_max_files_is_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let log = ServiceLog::open(&path, policy(100, 0)).unwrap();
    for i in 0..50 {
        log.append("web-1", Stream::Out, format!("line {i}").as_bytes());
        assert_eq!(dir_usage(dir.path()).0, 1);
    }
    let records = read_records(&path).unwrap();
    assert_eq!(records.last().unwrap().message, "line 49");
}

#[test]
fn oversized_record_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let log = ServiceLog::open(&path, policy(50, 2)).unwrap();
    log.append("web-1", Stream::Out, b"small");
    log.append("web-1", Stream::Out, &[b'x'; 200]);
    log.append("web-1", Stream::Out, b"after");
    let records = read_records(&path).unwrap();
    let lens: Vec<_> = records.iter().map(|r| r.message.len()).collect();
    assert_eq!(lens, [5, 200, 5]);
    assert_eq!(crate::logs::log_files(&path).len(), 3);
}

#[test]
fn clones_share_one_file_without_interleaving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let log = ServiceLog::open(&path, policy(4096, 50)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let message = format!("{}", i).repeat(10);
                    log.append(&format!("web-{t}"), Stream::Out, message.as_bytes());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let records = read_records(&path).unwrap();
    assert_eq!(records.len(), 800);
    for record in &records {
        assert!(record.instance.starts_with("web-"), "{record:?}");
    }
}

#[test]
fn write_failures_do_not_panic() {
    // Every write to /dev/full fails with ENOSPC.
    let full = Path::new("/dev/full");
    if !full.exists() {
        return;
    }
    let log = ServiceLog::open(full, policy(10, 2)).unwrap();
    for _ in 0..3 {
        log.append("web-1", Stream::Out, b"lost");
    }
}

#[test]
fn raw_text_rotates_within_the_same_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.log");
    let log = ServiceLog::open_raw(&path, policy(1024, 2)).unwrap();
    let line = b"2026-11-25T00:00:00Z  INFO servio::gateway::access: GET /api/menu-items 200\n";
    for _ in 0..500 {
        log.write_raw(line);
    }
    let (files, bytes) = dir_usage(dir.path());
    assert_eq!(files, 3, "the live file and max_files rotated ones");
    assert!(bytes <= 3 * 1024, "{bytes} bytes");
    let live = std::fs::read(&path).unwrap();
    assert!(live.ends_with(line), "text is written unchanged");
}

#[test]
fn a_batch_rotates_between_the_same_records_as_one_append_each() {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let messages: Vec<Vec<u8>> = (0..60)
        .map(|i| vec![b'a' + (i % 26) as u8; (i * 7) % 90])
        .collect();
    let record_batch = |messages: &[Vec<u8>]| {
        let mut batch = RecordBatch::new("web-1", Stream::Out);
        batch.start(time);
        for message in messages {
            batch.push(message);
        }
        batch
    };
    for (max_size, max_files) in [(300, 50), (100, 50), (60, 50), (2000, 1), (10_000, 0)] {
        let (one, all) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let log = ServiceLog::open(&one.path().join("web.log"), policy(max_size, max_files));
        let log = log.unwrap();
        for message in &messages {
            log.append_batch(&record_batch(std::slice::from_ref(message)));
        }
        let log = ServiceLog::open(&all.path().join("web.log"), policy(max_size, max_files));
        log.unwrap().append_batch(&record_batch(&messages));

        let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| {
                    (
                        e.file_name().into_string().unwrap(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
            files.sort();
            files
        };
        assert_eq!(files(one.path()), files(all.path()), "max_size {max_size}");
    }
}
