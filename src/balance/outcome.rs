//! How one attempt at an upstream ended, as the breaker and the retry policy judge it.

use http::StatusCode;

/// The end of one attempt. Connect errors, timeouts, broken connections and 502/503/504 are
/// failures; every other status, 500 included, is an answer the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered with this status.
    Status(StatusCode),
    /// No connection could be made: nothing was sent.
    ConnectFailed,
    /// No answer within the per-try timeout.
    Timeout,
    /// The connection broke after the request may have been sent.
    Broken,
}

impl Outcome {
    /// True when the attempt counts against the instance's breaker.
    pub fn is_failure(&self) -> bool {
        match self {
            Outcome::Status(status) => is_unavailable_status(*status),
            Outcome::ConnectFailed | Outcome::Timeout | Outcome::Broken => true,
        }
    }

    /// False only when the request certainly never reached the upstream.
    pub fn was_sent(&self) -> bool {
        !matches!(self, Outcome::ConnectFailed)
    }
}

/// 502, 503 and 504: the statuses that say "this instance could not serve you".
pub fn is_unavailable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}
