//! `GET /v1/logs?services=a,b&tail=N`: the dashboard's log pane. Answers the last N records
//! (default 200) of the named services' logs (every service when none is named) merged by
//! time, then keeps the response open and sends every new line, one JSON object per line
//! (NDJSON: `{"time","instance","stream","message"}`). Read through the same
//! [`crate::logs`] reader and [`crate::logs::Follower`] as `servio logs -f`, polled every
//! 100 ms. Needs the admin token, as logs may hold what a service printed of its secrets.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::daemon::Daemon;
use crate::daemon::admin::error;
use crate::logs::{self, Follower, LogRecord};

/// How often new lines are looked for (as `servio logs -f`).
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);
/// Longest the stream stays silent.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Records answered first when `tail` is not given, and the most it may ask for.
const DEFAULT_TAIL: usize = 200;
const MAX_TAIL: usize = 5000;

/// The services asked for (every one of the manifest when none), or what was wrong.
fn chosen(known: &[String], asked: Option<&str>) -> Result<Vec<String>, String> {
    let asked: Vec<&str> = asked
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if asked.is_empty() {
        return Ok(known.to_vec());
    }
    let mut chosen: Vec<String> = Vec::new();
    for name in asked {
        if !known.iter().any(|k| k == name) {
            return Err(format!(
                "unknown service `{name}`; known services: {}",
                known.join(", ")
            ));
        }
        if !chosen.iter().any(|c| c == name) {
            chosen.push(name.to_string());
        }
    }
    Ok(chosen)
}

fn parse_tail(text: Option<&str>) -> Result<usize, String> {
    match text {
        None => Ok(DEFAULT_TAIL),
        Some(text) => text
            .parse::<usize>()
            .map(|n| n.min(MAX_TAIL))
            .map_err(|_| format!("tail must be a whole number, not `{text}`")),
    }
}

pub async fn stream(
    State(daemon): State<Arc<Daemon>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let manifest = daemon.supervisor.manifest();
    let known: Vec<String> = manifest.services.keys().cloned().collect();
    let services = match chosen(&known, query.get("services").map(String::as_str)) {
        Ok(services) => services,
        Err(message) => return error(StatusCode::NOT_FOUND, "service_not_found", message),
    };
    let tail = match parse_tail(query.get("tail").map(String::as_str)) {
        Ok(tail) => tail,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_query", message),
    };
    let paths = crate::paths::StatePaths::for_project(&manifest.root);
    let mut followers: Vec<Follower> = services
        .iter()
        .map(|s| Follower::new(&paths.service_log(s)))
        .collect();
    // The rotated files, then the live one through its follower: nothing falls in between.
    let mut first = Vec::with_capacity(followers.len());
    for follower in &mut followers {
        let mut records = logs::read_rotated(follower.path()).unwrap_or_default();
        records.extend(follower.poll().unwrap_or_default());
        first.push(records);
    }
    let first = logs::tail(logs::merge(first), Some(tail));
    let stop = daemon.shutdown.clone();
    let start = futures_util::stream::once(async move { Ok(ndjson(&first)) });
    let more = futures_util::stream::unfold(followers, move |mut followers| {
        let stop = stop.clone();
        async move {
            let mut quiet = Duration::ZERO;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
                }
                let batch: Vec<Vec<LogRecord>> = followers
                    .iter_mut()
                    .map(|f| f.poll().unwrap_or_default())
                    .collect();
                let batch = logs::merge(batch);
                quiet += FOLLOW_INTERVAL;
                // A blank line now and then finds out when the reader has gone.
                if !batch.is_empty() || quiet >= HEARTBEAT {
                    let bytes = match batch.is_empty() {
                        true => Bytes::from_static(b"\n"),
                        false => ndjson(&batch),
                    };
                    return Some((Ok::<_, Infallible>(bytes), followers));
                }
            }
        }
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(start, more));
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// One JSON object per record, each on its own line.
fn ndjson(records: &[LogRecord]) -> Bytes {
    let mut out = Vec::new();
    for record in records {
        let line = json!({
            "time": logs::format_time(record.timestamp),
            "instance": record.instance,
            "stream": record.stream.as_str(),
            "message": record.message,
        });
        if serde_json::to_writer(&mut out, &line).is_ok() {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_the_named_known_ones_or_all() {
        let known = vec!["a".to_string(), "b".to_string()];
        type Case<'a> = (Option<&'a str>, Result<Vec<&'a str>, &'a str>);
        #[rustfmt::skip]
        let table: [Case; 6] = [
            (None, Ok(vec!["a", "b"])),
            (Some(""), Ok(vec!["a", "b"])),
            (Some("b"), Ok(vec!["b"])),
            (Some("b, a,b"), Ok(vec!["b", "a"])),
            (Some("a,zz"), Err("unknown service `zz`; known services: a, b")),
            (Some(",,"), Ok(vec!["a", "b"])),
        ];
        for (asked, expected) in table {
            let expected = expected
                .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
                .map_err(String::from);
            assert_eq!(chosen(&known, asked), expected, "{asked:?}");
        }
    }

    #[test]
    fn tail_is_bounded() {
        assert_eq!(parse_tail(None), Ok(DEFAULT_TAIL));
        assert_eq!(parse_tail(Some("5")), Ok(5));
        assert_eq!(parse_tail(Some("999999")), Ok(MAX_TAIL));
        assert!(parse_tail(Some("-1")).is_err());
        assert!(parse_tail(Some("x")).is_err());
    }

    #[test]
    fn records_become_json_lines() {
        let record = LogRecord {
            timestamp: std::time::UNIX_EPOCH,
            instance: "web-1".into(),
            stream: logs::Stream::Err,
            message: "a \"quoted\" line".into(),
        };
        let text = String::from_utf8(ndjson(&[record.clone(), record]).to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(value["stream"], "err");
        assert_eq!(value["message"], "a \"quoted\" line");
        assert_eq!(value["time"], "1970-01-01T00:00:00.000000Z");
    }
}
