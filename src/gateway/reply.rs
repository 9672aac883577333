//! The gateway's own answers, all JSON in the platform's error shape
//! `{"error":{"code","message","details":{"service","requestId"}}}`, each with the request id
//! header; 503s say when to come back (Retry-After).

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::json;

use super::body::ReplyBody;
use super::headers::X_REQUEST_ID;

/// Why the gateway answers itself instead of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The target is not a plain path (400).
    BadTarget(&'static str),
    /// Not an HTTP/1.1 request (400).
    Malformed,
    /// Where the body ends is not told one way only (400): see
    /// [`super::h1::head::Facts::framing_problem`].
    BadFraming(&'static str),
    /// The request head is past 64 KiB or 100 fields (431).
    HeadersTooLarge,
    /// No route's prefix covers the path (404).
    NoRoute,
    /// Past `max_body` (413).
    TooLarge { limit: u64 },
    /// The client's body broke off before it was complete (400).
    BodyBroken,
    /// The client's body did not arrive within `request_timeout` (408).
    BodyTimeout,
    /// The service has no healthy instance (503).
    NoInstance,
    /// The service has `max_concurrent` requests in flight already (503).
    Overloaded { limit: usize },
    /// The instance could not be reached or the connection broke (502).
    Upstream { instance: String, reason: String },
    /// No answer in time (504).
    Timeout,
    /// No routed service could give its OpenAPI document, for the gateway's own
    /// /openapi.json (503): each service with why.
    NoDocuments(String),
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::BadTarget(_)
            | Failure::BodyBroken
            | Failure::Malformed
            | Failure::BadFraming(_) => StatusCode::BAD_REQUEST,
            Failure::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Failure::NoRoute => StatusCode::NOT_FOUND,
            Failure::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Failure::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::NoInstance | Failure::Overloaded { .. } | Failure::NoDocuments(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Failure::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Failure::BadTarget(_) => "bad_request_target",
            Failure::Malformed => "malformed_request",
            Failure::BadFraming(_) => "ambiguous_framing",
            Failure::HeadersTooLarge => "headers_too_large",
            Failure::NoRoute => "no_route",
            Failure::TooLarge { .. } => "body_too_large",
            Failure::BodyBroken => "body_incomplete",
            Failure::BodyTimeout => "body_timeout",
            Failure::NoInstance => "no_healthy_instance",
            Failure::Overloaded { .. } => "service_overloaded",
            Failure::Upstream { .. } => "upstream_unavailable",
            Failure::Timeout => "upstream_timeout",
            Failure::NoDocuments(_) => "openapi_unavailable",
        }
    }

    /// What went wrong, for a person: `service` is the routed service, if any.
    pub fn message(&self, service: Option<&str>, path: &str) -> String {
        let service = service.unwrap_or("the service");
        match self {
            Failure::BadTarget(why) | Failure::BadFraming(why) => why.to_string(),
            Failure::Malformed => "the request is not valid HTTP/1.1".to_string(),
            Failure::HeadersTooLarge => format!(
                "the request head is larger than {} KiB or has more than {} fields",
                super::MAX_HEADER_BYTES >> 10,
                super::h1::head::MAX_FIELDS
            ),
            Failure::NoRoute => format!("no route for {path}"),
            Failure::TooLarge { limit } => format!(
                "the request body is larger than the gateway's limit of {} (gateway.max_body)",
                crate::manifest::format_size(*limit)
            ),
            Failure::BodyBroken => "the request body ended before it was complete".to_string(),
            Failure::BodyTimeout => {
                "the request body did not arrive within gateway.request_timeout".to_string()
            }
            Failure::NoInstance => format!("{service} has no healthy instance"),
            Failure::Overloaded { limit } => {
                format!("{service} already has {limit} requests in flight")
            }
            Failure::Upstream { instance, reason } => {
                format!("{service} could not answer: {instance}: {reason}")
            }
            Failure::Timeout => format!("{service} did not answer in time"),
            Failure::NoDocuments(why) => {
                format!("no routed service could give its OpenAPI document: {why}")
            }
        }
    }
}

/// The JSON response for `failure` on a request to `path` (routed to `service`, if any).
pub fn failure(
    failure: &Failure,
    service: Option<&str>,
    path: &str,
    request_id: &HeaderValue,
) -> Response<ReplyBody> {
    let body = json!({
        "error": {
            "code": failure.code(),
            "message": failure.message(service, path),
            "details": {
                "service": service,
                "requestId": request_id.to_str().unwrap_or_default(),
            },
        }
    });
    let mut response = json_response(failure.status(), &body);
    if failure.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
        .headers_mut()
        .insert(&X_REQUEST_ID, request_id.clone());
    response
}

/// The gateway's own `GET /health`.
pub fn health(request_id: &HeaderValue) -> Response<ReplyBody> {
    let mut response = json_response(
        StatusCode::OK,
        &json!({"status": "ok", "service": "servio-gateway"}),
    );
    response
        .headers_mut()
        .insert(&X_REQUEST_ID, request_id.clone());
    response
}

/// `body` as a JSON answer with `status`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<ReplyBody> {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    let mut response = Response::new(ReplyBody::full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
