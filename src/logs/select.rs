//! The pure part of `servio logs`: merge several logs by time, keep what `--since` and
//! `--tail` ask for. No I/O here, so it is table-tested.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::LogRecord;

/// Merges logs that are each in file order into one sequence ordered by timestamp.
///
/// Stable: on equal timestamps the earlier log (in `logs` order) goes first, and the records
/// of one log always keep their file order, even if its clock once went backwards.
pub fn merge(logs: Vec<Vec<LogRecord>>) -> Vec<LogRecord> {
    let total = logs.iter().map(Vec::len).sum();
    let mut sources: Vec<_> = logs
        .into_iter()
        .map(|log| log.into_iter().peekable())
        .collect();
    let mut merged = Vec::with_capacity(total);
    loop {
        let mut best: Option<(usize, SystemTime)> = None;
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(record) = source.peek() {
                if best.is_none_or(|(_, time)| record.timestamp < time) {
                    best = Some((i, record.timestamp));
                }
            }
        }
        let Some(record) = best.and_then(|(i, _)| sources[i].next()) else {
            return merged;
        };
        merged.push(record);
    }
}

/// The oldest time `--since` keeps: `now - since`, or the epoch when that underflows.
pub fn cutoff(now: SystemTime, since: Option<Duration>) -> Option<SystemTime> {
    since.map(|since| now.checked_sub(since).unwrap_or(UNIX_EPOCH))
}

/// The last `n` records (all of them when `n` is `None`).
pub fn tail(mut records: Vec<LogRecord>, n: Option<usize>) -> Vec<LogRecord> {
    if let Some(n) = n {
        let skip = records.len().saturating_sub(n);
        records.drain(..skip);
    }
    records
}

/// `--since` then `--tail`: records at or after `cutoff`, then the last `n` of those.
pub fn select(
    records: Vec<LogRecord>,
    cutoff: Option<SystemTime>,
    n: Option<usize>,
) -> Vec<LogRecord> {
    let mut records = records;
    if let Some(cutoff) = cutoff {
        records.retain(|r| r.timestamp >= cutoff);
    }
    tail(records, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Stream;

    fn rec(secs: u64, message: &str) -> LogRecord {
        LogRecord {
            timestamp: UNIX_EPOCH + Duration::from_secs(secs),
            instance: message.split(':').next().unwrap_or("").to_string(),
            stream: Stream::Out,
            message: message.to_string(),
        }
    }

    fn messages(records: &[LogRecord]) -> Vec<&str> {
        records.iter().map(|r| r.message.as_str()).collect()
    }

    #[test]
    fn merges_by_time_stably() {
        type Case = (
            &'static [&'static [(u64, &'static str)]],
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (&[], &[]),
            (&[&[], &[(1, "a:1")]], &["a:1"]),
            (
                &[&[(1, "a:1"), (3, "a:3")], &[(2, "b:2"), (4, "b:4")]],
                &["a:1", "b:2", "a:3", "b:4"],
            ),
            // Ties: the earlier log first, file order kept.
            (
                &[&[(5, "a:x"), (5, "a:y")], &[(5, "b:x")]],
                &["a:x", "a:y", "b:x"],
            ),
            (
                &[&[(5, "a:x")], &[(1, "b:x"), (5, "b:y")]],
                &["b:x", "a:x", "b:y"],
            ),
            // A clock going backwards inside one log does not reorder that log.
            (
                &[&[(9, "a:9"), (2, "a:2")], &[(5, "b:5")]],
                &["b:5", "a:9", "a:2"],
            ),
        ];
        for (i, (logs, expected)) in cases.iter().enumerate() {
            let logs = logs
                .iter()
                .map(|log| log.iter().map(|(t, m)| rec(*t, m)).collect())
                .collect();
            assert_eq!(messages(&merge(logs)), *expected, "case {i}");
        }
    }

    #[test]
    fn selects_since_and_tail() {
        let records: Vec<_> = (1..=5).map(|s| rec(s * 10, &format!("m{s}"))).collect();
        let at = |secs| Some(UNIX_EPOCH + Duration::from_secs(secs));
        let cases: &[(Option<SystemTime>, Option<usize>, &[&str])] = &[
            (None, None, &["m1", "m2", "m3", "m4", "m5"]),
            (None, Some(2), &["m4", "m5"]),
            (None, Some(0), &[]),
            (None, Some(99), &["m1", "m2", "m3", "m4", "m5"]),
            (at(30), None, &["m3", "m4", "m5"]),
            (at(31), Some(1), &["m5"]),
            (at(100), None, &[]),
            (at(0), Some(3), &["m3", "m4", "m5"]),
        ];
        for (i, (cutoff, n, expected)) in cases.iter().enumerate() {
            let got = select(records.clone(), *cutoff, *n);
            assert_eq!(messages(&got), *expected, "case {i}");
        }
    }

    #[test]
    fn cutoff_never_underflows() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(cutoff(now, None), None);
        assert_eq!(
            cutoff(now, Some(Duration::from_secs(40))),
            Some(UNIX_EPOCH + Duration::from_secs(60))
        );
        assert_eq!(cutoff(now, Some(Duration::MAX)), Some(UNIX_EPOCH));
    }
}
