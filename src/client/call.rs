//! One request to a service ([`Call`]) and its answer ([`Reply`]).

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ClientError;

/// A request to send to one instance of a service.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// The path with its query, like `/items?available=true`.
    pub path: String,
    /// A JSON body.
    pub body: Option<Bytes>,
    /// Overrides whether the call is safe to send twice; `None` decides by the method (a POST
    /// carrying an idempotency key can be marked idempotent).
    pub idempotent: Option<bool>,
    /// Set when the body could not be encoded; the call then fails without being sent.
    encode_error: Option<String>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Call {
            method,
            path: path.into(),
            body: None,
            idempotent: None,
            encode_error: None,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Call::new(Method::GET, path)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Call::new(Method::DELETE, path)
    }

    pub fn post_json<T: Serialize + ?Sized>(path: impl Into<String>, body: &T) -> Self {
        Call::new(Method::POST, path).json(body)
    }

    pub fn put_json<T: Serialize + ?Sized>(path: impl Into<String>, body: &T) -> Self {
        Call::new(Method::PUT, path).json(body)
    }

    /// Marks the call safe (or unsafe) to send more than once, whatever its method.
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = Some(yes);
        self
    }

    fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some(Bytes::from(bytes)),
            Err(error) => self.encode_error = Some(error.to_string()),
        }
        self
    }

    /// Whether the call may be sent again after it reached an instance.
    pub(super) fn is_idempotent(&self) -> bool {
        self.idempotent
            .unwrap_or_else(|| crate::balance::is_idempotent(&self.method))
    }

    /// Refuses calls that could never be sent: a body that did not encode, a bad path.
    pub(super) fn check(&self) -> Result<(), ClientError> {
        if let Some(error) = &self.encode_error {
            return Err(ClientError::Config(format!(
                "the request body is not valid JSON: {error}"
            )));
        }
        let valid =
            self.path.starts_with('/') && self.path.parse::<http::uri::PathAndQuery>().is_ok();
        if !valid {
            return Err(ClientError::Config(format!(
                "`{}` is not a request path; write one like `/items?available=true`",
                self.path
            )));
        }
        Ok(())
    }
}

/// What an instance answered. Any status is a reply, 500 included; only 502/503/504 after the
/// last try become [`ClientError::Unavailable`].
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    service: String,
}

impl Reply {
    pub(super) fn new(service: &str, status: StatusCode, body: Bytes) -> Self {
        Reply {
            status,
            body,
            service: service.to_owned(),
        }
    }

    /// The service that answered.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|error| ClientError::Decode {
            service: self.service.clone(),
            reason: error.to_string(),
        })
    }
}
