//! The control socket: `.servio/control.sock` (mode 0600), one JSON request per line, one
//! JSON response per line (an `Apply` gets two: its plan, then its results). Serves every
//! lifecycle verb, `status`, `down` and the CLI's progress watches.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::Daemon;
use crate::protocol::{Envelope, Intent, PROTOCOL_VERSION, Request, Response};

/// Longest request line accepted.
const MAX_REQUEST: u64 = 1024 * 1024;
/// Longest a watch may block.
const MAX_WATCH: Duration = Duration::from_secs(60);

/// Binds the socket at `path` with mode 0600, replacing a stale file (the caller holds the
/// daemon lock, so no live daemon owns it).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections until `stop` fires.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "control socket accept failed");
                    continue;
                }
            },
        };
        tokio::spawn(handle_connection(stream, daemon.clone()));
    }
}

async fn handle_connection(stream: UnixStream, daemon: Arc<Daemon>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let request = match serde_json::from_str::<Envelope>(&line) {
            Ok(envelope) if envelope.protocol != PROTOCOL_VERSION => Err(Response::Error {
                message: format!(
                    "this daemon speaks protocol {PROTOCOL_VERSION}, the CLI {}; run `servio down` with the old binary, then `servio up` again",
                    envelope.protocol
                ),
                usage: false,
            }),
            Ok(envelope) => Ok(envelope.request),
            Err(error) => Err(Response::Error {
                message: format!("bad request: {error}"),
                usage: true,
            }),
        };
        let (response, then_exit) = match request {
            Err(refusal) => (refusal, false),
            Ok(Request::Apply {
                intent,
                dry_run,
                timeout_ms,
            }) => (
                apply(&daemon, &mut write, intent, dry_run, timeout_ms).await,
                false,
            ),
            Ok(request) => answer(&daemon, request).await,
        };
        if send(&mut write, &response).await.is_err() {
            return;
        }
        if then_exit {
            daemon.shutdown.cancel();
            return;
        }
    }
}

async fn send(write: &mut OwnedWriteHalf, response: &Response) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.flush().await
}

/// `Apply`: sends the plan at once, carries it out (unless `dry_run`) and returns the
/// results, the connection's second answer.
async fn apply(
    daemon: &Daemon,
    write: &mut OwnedWriteHalf,
    intent: Intent,
    dry_run: bool,
    timeout_ms: u64,
) -> Response {
    if dry_run {
        return match daemon.supervisor.plan(&intent) {
            Ok((_, steps)) => Response::Plan {
                steps,
                adopted: Vec::new(),
            },
            Err(message) => Response::Error {
                message,
                usage: true,
            },
        };
    }
    let applied = daemon
        .supervisor
        .apply(
            &intent,
            Duration::from_millis(timeout_ms),
            async |steps, adopted| {
                let plan = Response::Plan {
                    steps: steps.clone(),
                    adopted,
                };
                let _ = send(write, &plan).await;
            },
        )
        .await;
    if matches!(intent, Intent::Up { .. }) {
        // The gateway follows the manifest `up` just read, as the services do.
        if let Some(gateway) = &daemon.gateway {
            gateway.reload(&daemon.supervisor.manifest().gateway);
        }
    }
    match applied {
        Ok(steps) => Response::Applied { steps },
        Err(message) => Response::Error {
            message,
            usage: true,
        },
    }
}

/// The response, and whether the daemon exits after sending it.
async fn answer(daemon: &Daemon, request: Request) -> (Response, bool) {
    match request {
        Request::Apply { .. } => (
            Response::Error {
                message: "apply is answered on its own path".to_string(),
                usage: true,
            },
            false,
        ),
        Request::Status => (Response::Status(daemon.status()), false),
        Request::Watch { after, wait_ms } => {
            let wait = Duration::from_millis(wait_ms).min(MAX_WATCH);
            daemon.registry.wait_past(after, wait).await;
            (Response::Status(daemon.status()), false)
        }
        Request::Down { timeout_ms } => {
            let timeout = timeout_ms.map(Duration::from_millis);
            let services = daemon.supervisor.stop_all(timeout).await;
            (Response::Stopped { services }, true)
        }
    }
}
