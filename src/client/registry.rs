//! Reading the registry API of the servio daemon: one service's view, plain or as a watch
//! (`?index=N&wait=30s`, answered when the view changes past N or the wait runs out).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};

use super::ClientError;
use super::error::root_cause;
use super::transport::HttpClient;
use crate::protocol::{Health, Instance, ServiceView};

/// The environment variable servio sets for the services it starts.
pub const ADMIN_URL_ENV: &str = "SERVIO_ADMIN_URL";

/// Registry answers larger than this are refused.
const MAX_VIEW_BYTES: usize = 4 << 20;

/// What the registry said about one service.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lookup {
    /// The view at `index`, with its healthy instances only.
    Found { index: u64, healthy: Vec<Instance> },
    /// The registry has no service of that name.
    NotFound,
}

/// `http://host:port` from what the user gave, or why it is not one.
pub(super) fn parse_admin_url(text: &str) -> Result<String, ClientError> {
    let invalid = |why: &str| {
        ClientError::Config(format!(
            "{ADMIN_URL_ENV} `{text}` is not usable: {why}; write it like http://127.0.0.1:2999"
        ))
    };
    let trimmed = text.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed.parse().map_err(|_| invalid("it is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("only http:// is supported"));
    }
    let authority = uri.authority().ok_or_else(|| invalid("it has no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("it must not carry credentials"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("it must not have a path or query"));
    }
    Ok(format!("http://{authority}"))
}

/// True for names the manifest can hold: ASCII letters, digits, `-`, `_` and `.`.
pub(super) fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The URL of one service's healthy view, as a watch past `index` when given.
pub(super) fn view_url(base: &str, service: &str, watch: Option<(u64, Duration)>) -> String {
    let mut url = format!("{base}/v1/services/{service}?healthy=true");
    if let Some((index, wait)) = watch {
        let wait = if wait.subsec_millis() == 0 {
            format!("{}s", wait.as_secs())
        } else {
            format!("{}ms", wait.as_millis())
        };
        url.push_str(&format!("&index={index}&wait={wait}"));
    }
    url
}

/// Makes sense of the registry's answer.
pub(super) fn parse_view(service: &str, status: StatusCode, body: &[u8]) -> Result<Lookup, String> {
    if status == StatusCode::NOT_FOUND {
        return Ok(Lookup::NotFound);
    }
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        return Err(format!("it answered {status} for {service}: {message}"));
    }
    let view: ServiceView = serde_json::from_slice(body)
        .map_err(|error| format!("its answer for {service} is not a service view: {error}"))?;
    let healthy = view
        .instances
        .into_iter()
        .filter(|i| i.health == Health::Healthy)
        .collect();
    Ok(Lookup::Found {
        index: view.index,
        healthy,
    })
}

/// Asks the registry at `base` about `service` (watching past `index` when given), giving up
/// after `timeout`. Errors are reasons fit for [`ClientError::Registry`].
pub(super) async fn fetch(
    http: &HttpClient,
    base: &str,
    service: &str,
    watch: Option<(u64, Duration)>,
    timeout: Duration,
) -> Result<Lookup, String> {
    let url = view_url(base, service, watch);
    let request = Request::get(&url)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|error| format!("cannot build a request for {url}: {error}"))?;
    let exchange = async {
        let response = http.request(request).await.map_err(|error| {
            if error.is_connect() {
                format!(
                    "cannot connect to {base} ({}); is `servio up` running?",
                    root_cause(&error)
                )
            } else {
                format!("the request to {base} failed: {}", root_cause(&error))
            }
        })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_VIEW_BYTES)
            .collect()
            .await
            .map_err(|error| format!("reading the answer from {base} failed: {error}"))?
            .to_bytes();
        parse_view(service, status, &body)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("{base} did not answer within {timeout:?}")))
}
