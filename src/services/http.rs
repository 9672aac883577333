//! The HTTP edge shared by every platform service: the one JSON error type, the JSON body
//! and path extractors that turn bad input into 4xx answers, and the JSON fallbacks.
//!
//! Input rules (the same on every route):
//! - a body that is not JSON at all, or is empty, is `400 malformed_json`;
//! - JSON of the wrong shape (missing field, wrong type, **unknown field**) is
//!   `422 invalid_body`: every request type uses `deny_unknown_fields`, so a typo such as
//!   `price_cents` is reported instead of silently ignored;
//! - a body over [`BODY_LIMIT`] is `413 body_too_large`;
//! - `Content-Type` is optional (lenient, for `curl -d` style clients); when present it must
//!   be `application/json` or `*/*+json`, else `415 unsupported_media_type`.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The largest request body any route accepts: 1 MiB.
pub const BODY_LIMIT: usize = 1 << 20;

/// Longest id accepted in a path or a body; anything longer cannot exist.
pub const MAX_ID_LEN: usize = 128;

/// Every non-2xx answer: `{"error":{"code","message","details"}}` with its status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Object(serde_json::Map::new()),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// `422 validation_failed` naming the offending field.
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("`{field}` {message}"),
        )
        .with_details(json!({ "field": field }))
    }

    /// `404 not_found` for an id that does not exist.
    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} `{id}` does not exist"),
        )
        .with_details(json!({ "id": id }))
    }

    /// `409 conflict`-family errors.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// `503 dependency_unavailable`: a service this one calls could not answer.
    pub fn dependency(service: &str, reason: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "dependency_unavailable",
            format!("{service} is unavailable: {reason}"),
        )
        .with_details(json!({ "service": service }))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "code": self.code, "message": self.message, "details": self.details }
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// Storage failures are the service's fault, never the caller's: logged in full, answered
/// as `503 storage_unavailable` (busy past the timeout, disk full, file gone...).
impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        tracing::error!(%error, "database error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the database is unavailable; retry shortly",
        )
    }
}

/// A JSON request body, decoded with the rules in the module docs.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = req.headers().get(header::CONTENT_TYPE) {
            let essence = value
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as `Content-Type: application/json`",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        decode(&bytes).map(JsonBody)
    }
}

/// Decodes a JSON document, classifying serde errors into 400 (syntax) and 422 (shape).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is empty; send a JSON object",
        ));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // serde would accept a struct written as an array; every body here is an object.
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    "the JSON body must be an object",
                ),
                Err(e) => syntax_error(&e),
            },
        );
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the JSON body does not match this route's schema: {e}"),
        ),
        _ => syntax_error(&e),
    })
}

fn syntax_error(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        format!("the request body is not valid JSON: {e}"),
    )
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {BODY_LIMIT} bytes"),
        )
        .with_details(json!({ "limit": BODY_LIMIT }))
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            format!("the request body could not be read: {rejection}"),
        )
    }
}

/// The single `{id}`-like parameter of a route; a segment that is not valid UTF-8 after
/// percent-decoding is `400 invalid_path`.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(id) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text())
                })?;
        Ok(PathId(id))
    }
}

/// Fallback for paths no route matches.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route for `{}`; see GET /openapi.json", uri.path()),
    )
}

/// Fallback for a known path with a method it does not serve.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "`{method} {}` is not served; see GET /openapi.json",
            uri.path()
        ),
    )
}
