//! Tests of [`LineSplitter`] (table-driven) and of [`capture`] over real readers.

use super::*;
use crate::logs::read_records;
use crate::manifest::LogPolicy;

fn split(chunks: &[&[u8]], max: usize) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut emit = |line: &[u8]| lines.push(line.to_vec());
    let mut splitter = LineSplitter::new(max);
    for chunk in chunks {
        splitter.push(chunk, &mut emit);
    }
    splitter.finish(&mut emit);
    lines
}

#[test]
fn splits_lines() {
    /// (input chunks, max line, expected lines)
    type Case = (&'static [&'static [u8]], usize, &'static [&'static [u8]]);
    let cases: &[Case] = &[
        (&[b"a\nb\n"], 8, &[b"a", b"b"]),
        (&[b"a\nb"], 8, &[b"a", b"b"]),
        (&[b"a", b"b\n", b"c"], 8, &[b"ab", b"c"]),
        (&[b"\n\n"], 8, &[b"", b""]),
        (&[b""], 8, &[]),
        (&[b"a\r\nb\r\n"], 8, &[b"a\r", b"b\r"]),
        // Exactly `max` then newline: one record, even across chunks.
        (&[b"12345678\n"], 8, &[b"12345678"]),
        (&[b"12345678", b"\nx"], 8, &[b"12345678", b"x"]),
        // Longer than `max`: cut into pieces.
        (&[b"123456789\n"], 8, &[b"12345678", b"9"]),
        (
            &[b"1234", b"5678", b"9abcdefgh", b"ij"],
            8,
            &[b"12345678", b"9abcdefg", b"hij"],
        ),
        // A cut never splits a UTF-8 character when it can move back.
        (&[b"1234567\xc3\xa9\n"], 8, &[b"1234567", b"\xc3\xa9"]),
    ];
    for (i, (chunks, max, expected)) in cases.iter().enumerate() {
        let got = split(chunks, *max);
        let expected: Vec<Vec<u8>> = expected.iter().map(|l| l.to_vec()).collect();
        assert_eq!(got, expected, "case {i}");
    }
}

#[test]
fn chunking_does_not_change_the_lines() {
    let mut input = Vec::new();
    for i in 0..200 {
        input.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, i * 7));
        input.push(b'\n');
    }
    input.extend(b"tail without newline");
    let whole = split(&[&input], 64);
    for size in [1, 3, 64, 65, 1000] {
        let chunks: Vec<&[u8]> = input.chunks(size).collect();
        assert_eq!(split(&chunks, 64), whole, "chunk size {size}");
    }
    assert!(whole.iter().all(|l| l.len() <= 64));
    assert_eq!(whole.last().unwrap(), b"tail without newline");
}

#[test]
fn pending_memory_stays_bounded() {
    let mut splitter = LineSplitter::new(MAX_LINE);
    let mut count = 0;
    let chunk = vec![b'x'; 10_000];
    for _ in 0..100 {
        splitter.push(&chunk, &mut |_| count += 1);
        assert!(splitter.pending.len() <= MAX_LINE);
    }
    assert_eq!(count, 1_000_000 / MAX_LINE);
}

#[tokio::test]
async fn capture_writes_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let log = ServiceLog::open(&path, LogPolicy::default()).unwrap();
    let mut input = b"first\r\nsecond\n".to_vec();
    input.extend(vec![b'y'; MAX_LINE * 2 + 10]);
    input.extend(b"\nbad \xff\nlast");
    capture(&input[..], "web-1".to_string(), Stream::Err, log).await;

    let records = read_records(&path).unwrap();
    let lens: Vec<usize> = records.iter().map(|r| r.message.len()).collect();
    assert_eq!(lens, [5, 6, MAX_LINE, MAX_LINE, 10, 7, 4]);
    assert_eq!(records[0].message, "first");
    assert_eq!(records[5].message, "bad \u{fffd}");
    assert_eq!(records[6].message, "last");
    assert!(records.iter().all(|r| r.stream == Stream::Err));
    assert!(records.iter().all(|r| r.instance == "web-1"));
}

#[tokio::test]
async fn capture_reads_a_real_child_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let log = ServiceLog::open(&path, LogPolicy::default()).unwrap();
    let mut child = tokio::process::Command::new("sh")
        .args([
            "-c",
            "printf 'out one\\r\\n'; printf 'err one\\n' >&2; printf 'out two'",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    tokio::join!(
        capture(out, "web-1".into(), Stream::Out, log.clone()),
        capture(err, "web-1".into(), Stream::Err, log),
    );
    child.wait().await.unwrap();

    let mut got: Vec<(Stream, String)> = read_records(&path)
        .unwrap()
        .into_iter()
        .map(|r| (r.stream, r.message))
        .collect();
    got.sort_by_key(|(stream, message)| (stream.as_str(), message.clone()));
    let expected = [
        (Stream::Err, "err one".to_string()),
        (Stream::Out, "out one".to_string()),
        (Stream::Out, "out two".to_string()),
    ];
    assert_eq!(got, expected);
}
