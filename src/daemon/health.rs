//! Health probes: one prober task per instance, writing health into the registry.
//!
//! Three meanings kept apart: start-up (first success turns `starting` into `healthy`,
//! which gates `up` and dependents), readiness (`unhealthy_threshold` consecutive failures
//! take the instance out of the healthy view at once) and liveness (`liveness_threshold`
//! failures ask the supervisor to restart it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::manifest::{HealthCheck, ProbeKind};
use crate::registry::{Event, Registry};

/// Probe interval before the first success, reached by doubling from [`FIRST_PROBE_GAP`]:
/// a service that is ready in 30 ms is seen in 30-40 ms, not 100.
pub const FAST_PROBE: Duration = Duration::from_millis(100);
/// The first gap between start-up probes.
pub const FIRST_PROBE_GAP: Duration = Duration::from_millis(5);

/// The pause before start-up probe number `attempt` (0-based): 5, 10, 20, 40, 80, 100, 100… ms.
pub fn startup_gap(attempt: u32) -> Duration {
    FIRST_PROBE_GAP
        .saturating_mul(1 << attempt.min(16))
        .min(FAST_PROBE)
}

/// Runs one probe against `address:port`: a TCP connect, or an HTTP GET expecting 2xx/3xx.
pub async fn probe_once(address: &str, port: u16, check: &HealthCheck) -> Result<(), String> {
    let attempt = async {
        let mut stream = TcpStream::connect((address, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        if check.kind == ProbeKind::Tcp {
            return Ok(());
        }
        let _ = stream.set_nodelay(true);
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {address}:{port}\r\nUser-Agent: servio-health\r\nConnection: close\r\n\r\n",
            check.path
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut head = [0u8; 64];
        let mut filled = 0;
        while filled < 12 {
            let n = stream
                .read(&mut head[filled..])
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed before a response".to_string());
            }
            filled += n;
        }
        parse_status(&head[..filled]).and_then(|code| {
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP {code}"))
            }
        })
    };
    match tokio::time::timeout(check.timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {:?}", check.timeout)),
    }
}

fn parse_status(head: &[u8]) -> Result<u16, String> {
    let text = std::str::from_utf8(head).map_err(|_| "not HTTP".to_string())?;
    let mut parts = text.split(' ');
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => {
            code.parse().map_err(|_| "bad status line".to_string())
        }
        _ => Err("not an HTTP response".to_string()),
    }
}

/// What a prober needs to know about its instance.
pub struct ProbeTarget {
    pub registry: Arc<Registry>,
    pub service: String,
    pub instance: String,
    pub address: String,
    pub port: u16,
    pub check: HealthCheck,
    /// The process group of a managed instance: until its first success, a probe counts
    /// only when this group is what listens on the port (another stack's service may have
    /// taken a port picked at the same moment, and answer in its place).
    pub owner: Option<u32>,
}

/// Probes until `cancel` fires. Sends on `liveness` (once) when the liveness threshold is
/// crossed, then stops probing: the supervisor restarts the instance.
pub async fn run_prober(
    target: ProbeTarget,
    cancel: CancellationToken,
    liveness: Option<mpsc::Sender<String>>,
) {
    let started = Instant::now();
    let check = &target.check;
    let mut ever_healthy = false;
    let mut failures: u32 = 0;
    let mut attempts: u32 = 0;
    loop {
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            result = probe_once(&target.address, target.port, check) => result,
        };
        let result = match (result, target.owner) {
            (Ok(()), Some(pgid)) if !ever_healthy => {
                use crate::process::ports::{Listener, listener_of};
                match listener_of(pgid, target.port) {
                    Listener::Ours | Listener::Unknown => Ok(()),
                    Listener::Others | Listener::Nobody => Err(format!(
                        "port {} answered, but not from this instance",
                        target.port
                    )),
                }
            }
            (result, _) => result,
        };
        let in_grace = !ever_healthy && started.elapsed() < check.start_period;
        match result {
            Ok(()) => {
                failures = 0;
                ever_healthy = true;
                target.report(Event::ProbePassed);
            }
            Err(reason) if !in_grace => {
                failures += 1;
                tracing::debug!(instance = %target.instance, %reason, failures, "probe failed");
                if failures >= check.unhealthy_threshold.max(1) {
                    target.report(Event::ProbesFailed);
                }
                if check.liveness_threshold > 0 && failures >= check.liveness_threshold {
                    if let Some(liveness) = &liveness {
                        tracing::warn!(instance = %target.instance, %reason, failures,
                            "liveness threshold crossed, restarting");
                        let _ = liveness
                            .send(format!("failed {failures} health checks ({reason})"))
                            .await;
                        return;
                    }
                }
            }
            Err(_) => {}
        }
        let pause = if ever_healthy || !in_grace {
            check.interval
        } else {
            attempts += 1;
            startup_gap(attempts - 1)
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

impl ProbeTarget {
    fn report(&self, event: Event) {
        self.registry.apply(&self.service, &self.instance, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_probes_ramp_up_to_the_fast_interval() {
        let gaps: Vec<u64> = (0..8).map(|a| startup_gap(a).as_millis() as u64).collect();
        assert_eq!(gaps, [5, 10, 20, 40, 80, 100, 100, 100]);
        assert_eq!(startup_gap(u32::MAX), FAST_PROBE);
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Ok(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service"), Ok(503));
        assert!(parse_status(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_status(&[0xff, 0xfe, 0x20]).is_err());
    }
}
