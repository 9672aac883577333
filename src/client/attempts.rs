//! One call end to end: resolve the service, take a place under its concurrency cap, pick an
//! instance, send, report the outcome to its breaker, retry on another instance where that is
//! safe and the budget allows, and turn the last try into a [`Reply`] or a [`ClientError`].

use std::sync::Arc;

use crate::balance::{PickError, RetryToken, may_retry};

use super::call::{Call, Reply};
use super::discovery::Resolved;
use super::registry::valid_service_name;
use super::transport::{self, Tried};
use super::{ClientError, Inner};

pub(super) async fn call(inner: &Inner, service: &str, call: &Call) -> Result<Reply, ClientError> {
    if !valid_service_name(service) {
        return Err(ClientError::Config(format!(
            "`{service}` is not a service name; use the name from services.toml, like `menu-service`"
        )));
    }
    call.check()?;
    let balancer = inner.balancer.service(service);
    let mut resolved = inner.discovery.resolve(service, &balancer).await?;
    let permit = balancer
        .admit()
        .map_err(|overloaded| ClientError::Unavailable {
            service: service.to_owned(),
            reason: overloaded.to_string(),
        })?;
    let idempotent = call.is_idempotent();
    let mut tried: Vec<String> = Vec::new();
    let mut _retry: Option<RetryToken> = None;
    loop {
        let exclude: Vec<&str> = tried.iter().map(String::as_str).collect();
        let mut attempt = match permit.pick(&resolved.instances, &exclude) {
            Ok(attempt) => attempt,
            Err(PickError::NoInstance | PickError::AllExcluded) => {
                return Err(ClientError::NoHealthyInstance {
                    service: service.to_owned(),
                });
            }
        };
        let Some(instance) = resolved.instances.get(attempt.index()) else {
            return Err(ClientError::NoHealthyInstance {
                service: service.to_owned(),
            });
        };
        let result =
            transport::send(&inner.http, instance, call, inner.options.per_try_timeout).await;
        let outcome = result.outcome();
        attempt.record(&outcome);
        tried.push(attempt.id().to_owned());
        drop(attempt);

        let retries_used = (tried.len() - 1) as u32;
        if retries_used < inner.options.retries
            && may_retry(idempotent, outcome.was_sent(), &outcome)
        {
            // The view may have changed while this try ran; retry against the newest one.
            if let Some(latest) = inner.discovery.latest(service) {
                resolved = latest;
            }
            if has_untried(&resolved, &tried)
                && let Some(token) = permit.try_retry()
            {
                _retry = Some(token);
                tokio::time::sleep(balancer.config().retry.backoff(retries_used + 1)).await;
                continue;
            }
        }
        return finish(service, result, &tried);
    }
}

fn has_untried(resolved: &Arc<Resolved>, tried: &[String]) -> bool {
    resolved
        .instances
        .iter()
        .any(|instance| !tried.contains(&instance.id))
}

/// The caller's view of the last try.
pub(super) fn finish(service: &str, result: Tried, tried: &[String]) -> Result<Reply, ClientError> {
    let instance = tried.last().map_or("", String::as_str);
    let tries = match tried.len() {
        0 | 1 => String::new(),
        n => format!(" (tried {n} instances)"),
    };
    let unavailable = |what: String| ClientError::Unavailable {
        service: service.to_owned(),
        reason: format!("{what}{tries}"),
    };
    match result {
        Tried::Answered { status, .. } if crate::balance::is_unavailable_status(status) => {
            Err(unavailable(format!("{instance} answered {status}")))
        }
        Tried::Answered { status, body } => Ok(Reply::new(service, status, body)),
        Tried::TooLarge { status } => Err(ClientError::Decode {
            service: service.to_owned(),
            reason: format!(
                "the {status} reply is larger than {} MiB",
                transport::MAX_REPLY_BYTES >> 20
            ),
        }),
        Tried::ConnectFailed(reason) => Err(unavailable(format!(
            "cannot connect to {instance}: {reason}"
        ))),
        Tried::Broken(reason) => Err(unavailable(format!(
            "the connection to {instance} broke: {reason}"
        ))),
        Tried::Timeout => Err(ClientError::Timeout {
            service: service.to_owned(),
        }),
    }
}
