//! Where a placement's time went, stage by stage, answered in a `Server-Timing` header
//! (W3C Server Timing: `menu;dur=1.20, insert;dur=0.31, ...`, milliseconds).
//!
//! Wall-clock time per stage, queueing included (a write waiting for the writer counts), so
//! a benchmark can split an order's latency into its hops and its own writes without a
//! profiler. Costs a few clock reads per order.

use std::fmt::Write;
use std::time::{Duration, Instant};

/// The stages of one placement, in the order they ran.
#[derive(Debug, Default, Clone)]
pub struct Timing {
    stages: Vec<(&'static str, Duration)>,
}

impl Timing {
    /// Runs `future`, recording how long it took as `stage`.
    pub async fn time<T>(&mut self, stage: &'static str, future: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let value = future.await;
        self.stages.push((stage, start.elapsed()));
        value
    }

    /// The `Server-Timing` header value; empty when nothing was timed.
    pub fn header(&self) -> String {
        let mut out = String::new();
        for (stage, took) in &self.stages {
            if !out.is_empty() {
                out.push_str(", ");
            }
            let _ = write!(out, "{stage};dur={:.3}", took.as_secs_f64() * 1000.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_each_stage_in_milliseconds() {
        let mut timing = Timing::default();
        assert_eq!(timing.header(), "");
        assert_eq!(timing.time("menu", async { 7 }).await, 7);
        timing.time("insert", async {}).await;
        let header = timing.header();
        let names: Vec<&str> = header
            .split(", ")
            .map(|part| part.split(";dur=").next().unwrap_or(""))
            .collect();
        assert_eq!(names, ["menu", "insert"]);
        assert!(header.split(", ").all(|part| {
            part.split(";dur=")
                .nth(1)
                .is_some_and(|ms| ms.parse::<f64>().is_ok())
        }));
    }
}
