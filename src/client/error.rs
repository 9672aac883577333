//! What a service call can fail with. The messages are shown to users as they are, so they
//! name the service and say what went wrong in plain words.

/// Why a call to another service failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The registry lists no healthy instance of the service.
    #[error("{service} is unavailable: no healthy instance")]
    NoHealthyInstance { service: String },
    /// Every try failed: no connection, a broken one, 502/503/504, or too many calls in flight.
    #[error("{service} is unavailable: {reason}")]
    Unavailable { service: String, reason: String },
    /// The last try got no answer within the per-try timeout.
    #[error("{service} did not answer in time")]
    Timeout { service: String },
    /// The registry could not be asked, or does not know the service.
    #[error("the servio registry could not be read: {reason}")]
    Registry { reason: String },
    /// The service's static endpoints (`SERVIO_ENDPOINTS_*`) resolve to no address.
    #[error("{service} is unavailable: {variable} does not resolve: {reason}")]
    Unresolved {
        service: String,
        variable: String,
        reason: String,
    },
    /// The reply was not the JSON the caller expected.
    #[error("{service} sent a reply that could not be read: {reason}")]
    Decode { service: String, reason: String },
    /// The client is set up wrong (admin URL, service name, path, request body).
    #[error("service client: {0}")]
    Config(String),
}

impl ClientError {
    /// The service the error is about, when it is about one.
    pub fn service(&self) -> Option<&str> {
        match self {
            ClientError::NoHealthyInstance { service }
            | ClientError::Unavailable { service, .. }
            | ClientError::Timeout { service }
            | ClientError::Unresolved { service, .. }
            | ClientError::Decode { service, .. } => Some(service),
            ClientError::Registry { .. } | ClientError::Config(_) => None,
        }
    }
}

/// The innermost cause of an error, which is usually the one a person can act on
/// ("Connection refused (os error 111)" rather than "client error (Connect)").
pub(super) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
