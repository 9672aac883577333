//! The dashboard's buttons: `POST /v1/services/{name}/{restart|stop|start|scale}` (scale
//! takes `{"replicas": N}`) and `POST /v1/services/{name}/instances/{id}/restart`. Each is
//! the CLI's verb: an [`Intent`] carried out by the supervisor's one `apply` (an instance
//! restart is one step of a rolling restart, [`crate::daemon::supervisor::Supervisor::restart_instance`]).
//! The answer comes when it is done: 200 with the steps, 409 when a step failed, 422 when
//! the verb was refused (unknown service, dependents still running).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::daemon::Daemon;
use crate::daemon::admin::error;
use crate::protocol::Intent;

/// How long new instances get to become healthy (the CLI's default `--timeout`).
const TIMEOUT: Duration = Duration::from_secs(60);
/// As `servio scale` allows.
const MAX_INSTANCES: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleBody {
    replicas: u32,
}

/// The intent of `verb` on `service`; `body` only matters for scale.
fn intent(service: &str, verb: &str, body: &[u8]) -> Result<Intent, (StatusCode, String)> {
    let services = vec![service.to_string()];
    match verb {
        "restart" => Ok(Intent::Restart { services }),
        "start" => Ok(Intent::Start { services }),
        "stop" => Ok(Intent::Stop {
            services,
            with_dependents: false,
            timeout_ms: None,
        }),
        "scale" => {
            let scale: ScaleBody = serde_json::from_slice(body).map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("scale takes {{\"replicas\": N}}: {e}"),
                )
            })?;
            if scale.replicas > MAX_INSTANCES {
                return Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{} instances is more than {MAX_INSTANCES}", scale.replicas),
                ));
            }
            Ok(Intent::Scale {
                counts: BTreeMap::from([(service.to_string(), scale.replicas)]),
            })
        }
        other => Err((
            StatusCode::NOT_FOUND,
            format!("no verb `{other}`; use restart, stop, start or scale"),
        )),
    }
}

pub async fn service(
    State(daemon): State<Arc<Daemon>>,
    Path((name, verb)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let intent = match intent(&name, &verb, &body) {
        Ok(intent) => intent,
        Err((status, message)) => return error(status, "bad_request", message),
    };
    let applied = daemon
        .supervisor
        .apply(&intent, TIMEOUT, async |_, _| {})
        .await;
    match applied {
        Err(message) => error(StatusCode::UNPROCESSABLE_ENTITY, "refused", message),
        Ok(steps) => {
            let failed: Vec<String> = steps
                .iter()
                .filter_map(|s| Some(format!("{}: {}", s.service, s.error.as_ref()?)))
                .collect();
            if failed.is_empty() {
                Json(json!({ "steps": steps })).into_response()
            } else {
                error(StatusCode::CONFLICT, "failed", failed.join("; "))
            }
        }
    }
}

pub async fn restart_instance(
    State(daemon): State<Arc<Daemon>>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    match daemon
        .supervisor
        .restart_instance(&name, &id, TIMEOUT)
        .await
    {
        Ok(()) => Json(json!({ "restarted": id })).into_response(),
        Err(message) => error(StatusCode::CONFLICT, "failed", message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_become_the_cli_intents() {
        let one = || vec!["web".to_string()];
        assert_eq!(
            intent("web", "restart", b""),
            Ok(Intent::Restart { services: one() })
        );
        assert_eq!(
            intent("web", "start", b""),
            Ok(Intent::Start { services: one() })
        );
        assert_eq!(
            intent("web", "stop", b""),
            Ok(Intent::Stop {
                services: one(),
                with_dependents: false,
                timeout_ms: None
            })
        );
        assert_eq!(
            intent("web", "scale", br#"{"replicas": 3}"#),
            Ok(Intent::Scale {
                counts: BTreeMap::from([("web".to_string(), 3)])
            })
        );
        #[rustfmt::skip]
        let refused: [(&str, &[u8], StatusCode); 5] = [
            ("scale", b"", StatusCode::BAD_REQUEST),
            ("scale", br#"{"replicas": -1}"#, StatusCode::BAD_REQUEST),
            ("scale", br#"{"replicas": 2, "x": 1}"#, StatusCode::BAD_REQUEST),
            ("scale", br#"{"replicas": 1001}"#, StatusCode::UNPROCESSABLE_ENTITY),
            ("explode", b"", StatusCode::NOT_FOUND),
        ];
        for (verb, body, status) in refused {
            assert_eq!(
                intent("web", verb, body).map_err(|e| e.0),
                Err(status),
                "{verb}"
            );
        }
    }
}
