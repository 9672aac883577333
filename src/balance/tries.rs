//! The tries of one request, for every caller that balances: the gateway's two transports
//! (the HTTP/1.1 fast path and hyper) and the service client. Pick a healthy instance from
//! the caller's view as it is now, send under the per-try timeout, report the outcome to
//! the instance's breaker, and do what [`super::retry::next`] decides: answer, or try
//! another instance (at once when nothing was sent, else after a backoff and with the
//! budget's grant), all within the request's deadline.

use std::ops::Deref;
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use super::guard::{Attempt, Permit, RetryToken};
use super::outcome::Outcome;
use super::retry::{Next, TryEnd, next};
use super::service::Endpoint;

/// Why one try got no answer.
#[derive(Debug)]
pub enum TryError<F> {
    /// The instance failed: counts against its breaker, may be retried.
    Failed(Outcome, F),
    /// The caller's own request broke (its body was too large or broke off): nobody
    /// else's fault, never retried.
    ClientFault(F),
}

/// How the tries of one request reach instances, and what a caller makes of failures.
pub trait Transport {
    /// One candidate instance.
    type Instance: Endpoint;
    /// The healthy instances, as the caller sees them now.
    type View: Deref<Target = [Self::Instance]>;
    /// An instance's answer (up to its head, or whole: the transport decides).
    type Reply;
    /// What the caller gets when no try gave an answer to relay.
    type Failure;

    /// The healthy instances right now; read again before every try.
    fn candidates(&self) -> Self::View;

    /// Sends one try to `instance` and waits for its answer.
    fn send(
        &mut self,
        instance: &Self::Instance,
    ) -> impl Future<Output = Result<Self::Reply, TryError<Self::Failure>>>;

    fn status(reply: &Self::Reply) -> StatusCode;

    /// Whether another try can still send the whole request.
    fn replayable(&self) -> bool;

    /// The failure of a try that got no answer within its time.
    fn timed_out(&self, instance: &Self::Instance) -> Self::Failure;

    /// The failure to report when `instance` answered `status` (502/503/504), that answer
    /// was given up for a retry, and no other try answered.
    fn unavailable(&self, instance: &Self::Instance, status: StatusCode) -> Self::Failure;

    /// The failure when there is no instance to try at all.
    fn no_instance(&self) -> Self::Failure;

    /// Told how each try ended, before the decision about the next (metrics, logs).
    fn tried(&mut self, _instance: &Self::Instance, _outcome: &Outcome) {}
}

/// The limits of one request's tries.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idempotent: bool,
    /// Extra tries on other instances, at most.
    pub retries: u32,
    pub per_try_timeout: Duration,
    /// The whole request, every try and backoff included.
    pub deadline: Instant,
}

/// What a request holds from the balancer while its reply streams: its place under the
/// service's cap, the instance's in-flight count and the budget's retry, if it took one.
#[derive(Debug)]
pub struct Hold {
    pub attempt: Attempt,
    pub permit: Permit,
    pub retry: Option<RetryToken>,
}

/// An instance's answer to relay, with what the request holds while it streams.
pub struct Answered<R> {
    pub reply: R,
    pub hold: Hold,
}

/// The tries of one request admitted under `permit`: the answer to relay, or the failure
/// to answer with. `retries` counts the retries taken (for the access log).
pub async fn run<T: Transport>(
    permit: Permit,
    transport: &mut T,
    limits: &Limits,
    retries: &mut u32,
) -> Result<Answered<T::Reply>, T::Failure> {
    let config = permit.retry_config();
    let mut tried: Vec<String> = Vec::new();
    let mut retry: Option<RetryToken> = None;
    let mut last: Option<T::Failure> = None;
    loop {
        let view = transport.candidates();
        let exclude: Vec<&str> = tried.iter().map(String::as_str).collect();
        let picked = permit
            .pick(&view, &exclude)
            .ok()
            .and_then(|attempt| Some((view.get(attempt.index())?, attempt)));
        let Some((instance, mut attempt)) = picked else {
            return Err(last.unwrap_or_else(|| transport.no_instance()));
        };
        let try_deadline = limits.deadline.min(Instant::now() + limits.per_try_timeout);
        let sent = tokio::time::timeout_at(try_deadline, transport.send(instance)).await;
        let (outcome, ended) = match sent {
            Err(_) => (Outcome::Timeout, Err(transport.timed_out(instance))),
            Ok(Err(TryError::ClientFault(failure))) => return Err(failure),
            Ok(Err(TryError::Failed(outcome, failure))) => (outcome, Err(failure)),
            Ok(Ok(reply)) => (Outcome::Status(T::status(&reply)), Ok(reply)),
        };
        attempt.record(&outcome);
        transport.tried(instance, &outcome);
        let end = TryEnd {
            outcome,
            idempotent: limits.idempotent,
            replayable: transport.replayable(),
            retries: *retries,
            max_retries: limits.retries,
            untried: transport
                .candidates()
                .iter()
                .any(|other| other.id() != instance.id() && !exclude.contains(&other.id())),
            time_left: limits.deadline.saturating_duration_since(Instant::now()),
        };
        let decided = match next(&end, &config, fastrand::f64()) {
            Next::Stop => None,
            Next::Retry {
                after,
                budgeted: false,
            } => {
                permit.reroute();
                Some((after, None))
            }
            // Only a retry the budget grants is taken; else this try's end is the answer.
            Next::Retry {
                after,
                budgeted: true,
            } => permit.try_retry().map(|token| (after, Some(token))),
        };
        let Some((after, token)) = decided else {
            return ended.map(|reply| Answered {
                reply,
                hold: Hold {
                    attempt,
                    permit,
                    retry,
                },
            });
        };
        last = Some(match ended {
            Ok(reply) => transport.unavailable(instance, T::status(&reply)),
            Err(failure) => failure,
        });
        tried.push(instance.id().to_owned());
        drop(attempt);
        retry = token.or(retry);
        *retries += 1;
        if !after.is_zero() {
            tokio::time::sleep(after).await;
        }
    }
}
