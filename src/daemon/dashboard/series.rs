//! Per-route figures over the last five minutes, for the dashboard's charts: one point a
//! second (request rate, 5xx rate, p50 and p99 latency), each the difference between two
//! readings of the gateway's counters. The arithmetic is pure and table-tested; [`History`]
//! only keeps the points.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use crate::cli::status_live::route_rates;
use crate::gateway::metrics::BUCKETS;
use crate::protocol::RouteStatus;

/// Points kept per route: five minutes at one a second.
pub const KEPT: usize = 300;

/// One route over one interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutePoint {
    /// End of the interval, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Requests answered per second.
    pub rate: f64,
    /// 5xx answers per second.
    pub error_rate: f64,
    /// Latency percentiles of the requests answered in the interval, in milliseconds;
    /// `None` when none was.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// A route's points, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteSeries {
    pub prefix: String,
    pub service: String,
    pub points: Vec<RoutePoint>,
}

/// The `q` quantile (0..=1) of requests counted per latency bucket (`BUCKETS`, then one for
/// slower), in milliseconds, interpolated within its bucket as Prometheus'
/// `histogram_quantile` does; the slowest bucket has no upper bound, so its lower one is
/// answered. `None` without requests.
pub fn quantile_ms(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
            let Some(&upper) = BUCKETS.get(i) else {
                return Some(lower * 1000.0);
            };
            let within = (rank - below as f64) / count as f64;
            return Some((lower + (upper - lower) * within) * 1000.0);
        }
        below += count;
    }
    BUCKETS.last().map(|b| b * 1000.0)
}

/// Each route's point between two readings `elapsed` apart (routes in both only).
pub fn points(
    before: &[RouteStatus],
    after: &[RouteStatus],
    elapsed: Duration,
    at_ms: u64,
) -> Vec<(String, RoutePoint)> {
    route_rates(before, after, elapsed)
        .into_iter()
        .filter_map(|(prefix, rate, error_rate)| {
            let then = before.iter().find(|r| r.prefix == prefix)?;
            let now = after.iter().find(|r| r.prefix == prefix)?;
            let counts: Vec<u64> = now
                .latency_buckets
                .iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(then.latency_buckets.get(i).copied().unwrap_or(0)))
                .collect();
            let point = RoutePoint {
                at_ms,
                rate,
                error_rate,
                p50_ms: quantile_ms(&counts, 0.5),
                p99_ms: quantile_ms(&counts, 0.99),
            };
            Some((prefix, point))
        })
        .collect()
}

/// The last [`KEPT`] points of every route, and the reading the next point starts from.
#[derive(Debug, Default)]
pub struct History {
    series: BTreeMap<String, (String, VecDeque<RoutePoint>)>,
    last: Option<(std::time::Instant, Vec<RouteStatus>)>,
}

impl History {
    /// Adds a point per route from a new reading of the gateway's counters; routes no
    /// longer configured are forgotten.
    pub fn record(&mut self, now: std::time::Instant, at_ms: u64, routes: Vec<RouteStatus>) {
        if let Some((then, before)) = &self.last {
            for (prefix, point) in points(before, &routes, now.duration_since(*then), at_ms) {
                let service = routes
                    .iter()
                    .find(|r| r.prefix == prefix)
                    .map(|r| r.service.clone())
                    .unwrap_or_default();
                let (kept_service, kept) = self.series.entry(prefix).or_default();
                *kept_service = service;
                if kept.len() == KEPT {
                    kept.pop_front();
                }
                kept.push_back(point);
            }
        }
        self.series
            .retain(|prefix, _| routes.iter().any(|r| &r.prefix == prefix));
        self.last = Some((now, routes));
    }

    /// Every route's points, oldest first.
    pub fn series(&self) -> Vec<RouteSeries> {
        self.series
            .iter()
            .map(|(prefix, (service, points))| RouteSeries {
                prefix: prefix.clone(),
                service: service.clone(),
                points: points.iter().cloned().collect(),
            })
            .collect()
    }

    /// Each route's newest point.
    pub fn latest(&self) -> Vec<RouteSeries> {
        self.series
            .iter()
            .filter_map(|(prefix, (service, points))| {
                Some(RouteSeries {
                    prefix: prefix.clone(),
                    service: service.clone(),
                    points: vec![points.back()?.clone()],
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(usize, u64)]) -> Vec<u64> {
        let mut counts = vec![0; BUCKETS.len() + 1];
        for &(i, n) in pairs {
            counts[i] = n;
        }
        counts
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        type Case<'a> = (&'a [(usize, u64)], f64, Option<f64>);
        #[rustfmt::skip]
        let table: [Case; 7] = [
            (&[], 0.5, None),
            // All in (0, 0.5 ms]: the median is half way.
            (&[(0, 10)], 0.5, Some(0.25)),
            // 1 ms..2.5 ms holds all: p50 in the middle, p99 near the top.
            (&[(2, 100)], 0.5, Some(1.75)),
            (&[(2, 100)], 0.99, Some(2.485)),
            // 90 fast, 10 in (100, 250] ms: p99 is in the slow bucket.
            (&[(1, 90), (8, 10)], 0.99, Some(235.0)),
            (&[(1, 90), (8, 10)], 0.5, Some(0.5 + 0.5 * (50.0 / 90.0))),
            // Slower than the last bound: the bound is all we know.
            (&[(BUCKETS.len(), 3)], 0.5, Some(10_000.0)),
        ];
        for (pairs, q, expected) in table {
            let got = quantile_ms(&counts(pairs), q);
            match (got, expected) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{pairs:?} q{q}: {g} ≠ {e}"),
                _ => assert_eq!(got, expected, "{pairs:?} q{q}"),
            }
        }
    }

    fn route(prefix: &str, requests: u64, errors: u64, buckets: &[(usize, u64)]) -> RouteStatus {
        RouteStatus {
            prefix: prefix.into(),
            service: "web".into(),
            requests,
            errors,
            latency_buckets: counts(buckets),
        }
    }

    #[test]
    fn points_are_differences_between_readings() {
        let before = [route("/a", 10, 1, &[(2, 10)]), route("/gone", 1, 0, &[])];
        let after = [
            route("/a", 30, 5, &[(2, 10), (8, 20)]),
            route("/new", 5, 0, &[]),
        ];
        let got = points(&before, &after, Duration::from_secs(2), 7);
        assert_eq!(got.len(), 1);
        let (prefix, point) = &got[0];
        assert_eq!(prefix, "/a");
        assert_eq!((point.at_ms, point.rate, point.error_rate), (7, 10.0, 2.0));
        // Only the 20 new requests count, all in (100, 250] ms.
        assert_eq!(point.p50_ms, Some(175.0));
    }

    #[test]
    fn history_keeps_five_minutes_of_configured_routes() {
        let start = std::time::Instant::now();
        let mut history = History::default();
        for second in 0..=(KEPT as u64 + 5) {
            let at = start + Duration::from_secs(second);
            history.record(at, second, vec![route("/a", second, 0, &[])]);
        }
        let series = history.series();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].points.len(), KEPT);
        assert_eq!(series[0].points[0].at_ms, 6);
        assert_eq!(series[0].points[0].rate, 1.0);
        assert_eq!(history.latest()[0].points[0].at_ms, KEPT as u64 + 5);
        history.record(start + Duration::from_secs(999), 999, Vec::new());
        assert!(history.series().is_empty());
    }
}
