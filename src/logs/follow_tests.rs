//! Tests of [`Follower`]: late files, partial lines, rotation and truncation.

use std::io::Write;

use super::*;
use crate::logs::{ServiceLog, Stream};
use crate::manifest::LogPolicy;

fn messages(records: Vec<LogRecord>) -> Vec<String> {
    records.into_iter().map(|r| r.message).collect()
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

const LINE_A: &[u8] = b"2024-05-01T10:00:00.000000Z web-1 out a\n";
const LINE_B: &[u8] = b"2024-05-01T10:00:01.000000Z web-1 out b\n";

#[test]
fn picks_up_a_file_that_appears_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let mut follower = Follower::new(&path);
    assert!(follower.poll().unwrap().is_empty());
    append_raw(&path, LINE_A);
    assert_eq!(messages(follower.poll().unwrap()), ["a"]);
    assert!(follower.poll().unwrap().is_empty());
    assert_eq!(follower.path(), path);
}

#[test]
fn waits_for_the_end_of_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let mut follower = Follower::new(&path);
    append_raw(&path, &LINE_A[..20]);
    assert!(follower.poll().unwrap().is_empty());
    append_raw(&path, &LINE_A[20..]);
    append_raw(&path, &LINE_B[..30]);
    assert_eq!(messages(follower.poll().unwrap()), ["a"]);
    append_raw(&path, &LINE_B[30..]);
    assert_eq!(messages(follower.poll().unwrap()), ["b"]);
}

#[test]
fn follows_across_rotation_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let log = ServiceLog::open(
        &path,
        LogPolicy {
            max_size: 200,
            max_files: 2,
        },
    )
    .unwrap();
    let mut follower = Follower::new(&path);
    let mut seen = Vec::new();
    for i in 0..60 {
        // Two lines per poll: rotation often falls between lines the follower has not read.
        log.append("web-1", Stream::Out, format!("line {i} a").as_bytes());
        log.append("web-1", Stream::Out, format!("line {i} b").as_bytes());
        seen.extend(messages(follower.poll().unwrap()));
    }
    let expected: Vec<String> = (0..60)
        .flat_map(|i| [format!("line {i} a"), format!("line {i} b")])
        .collect();
    assert_eq!(seen, expected);
    assert!(
        crate::logs::log_files(&path).len() == 3,
        "the log did rotate"
    );
}

#[test]
fn rereads_a_truncated_or_replaced_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    append_raw(&path, &[LINE_A, LINE_A].concat());
    let mut follower = Follower::new(&path);
    assert_eq!(messages(follower.poll().unwrap()), ["a", "a"]);

    // Truncated in place (same inode), then shorter content.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    append_raw(&path, LINE_B);
    assert_eq!(messages(follower.poll().unwrap()), ["b"]);

    // Deleted: nothing new, no error; recreated: read from its start.
    std::fs::remove_file(&path).unwrap();
    assert!(follower.poll().unwrap().is_empty());
    append_raw(&path, LINE_A);
    assert_eq!(messages(follower.poll().unwrap()), ["a"]);
}
