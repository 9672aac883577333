//! One call end to end: resolve the service, take a place under its concurrency cap, then
//! the balancer's one loop of tries ([`crate::balance::tries`], the same as the gateway's)
//! over the newest cached view, and turn the last try into a [`Reply`] or a [`ClientError`].

use std::ops::Deref;
use std::sync::Arc;

use http::StatusCode;
use tokio::time::Instant;

use crate::balance::{self, Limits, Outcome, TryError};
use crate::protocol::Instance;

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
    let began = Instant::now();
    let balancer = inner.balancer.service(service);
    let resolved = inner.discovery.resolve(service, &balancer).await?;
    let permit = balancer
        .admit()
        .map_err(|overloaded| ClientError::Unavailable {
            service: service.to_owned(),
            reason: overloaded.to_string(),
        })?;
    let limits = Limits {
        idempotent: call.is_idempotent(),
        retries: inner.options.retries,
        per_try_timeout: inner.options.per_try_timeout,
        deadline: began + inner.options.timeout,
    };
    let mut calling = Calling {
        inner,
        service,
        call,
        first: resolved,
    };
    let mut retries = 0;
    match balance::tries::run(permit, &mut calling, &limits, &mut retries).await {
        Ok(answered) => {
            let instance = answered.hold.attempt.id().to_owned();
            finish(service, answered.reply, &instance, retries as usize + 1)
        }
        Err(Ended::Tried { instance, tried }) => {
            finish(service, tried, &instance, retries as usize + 1)
        }
        Err(Ended::NoInstance) => Err(ClientError::NoHealthyInstance {
            service: service.to_owned(),
        }),
    }
}

/// One call's tries as the balancer's loop sees them.
struct Calling<'a> {
    inner: &'a Inner,
    service: &'a str,
    call: &'a Call,
    /// The view the call was resolved with, until the cache has a newer one.
    first: Arc<Resolved>,
}

/// The instances of one cached view.
struct Listed(Arc<Resolved>);

impl Deref for Listed {
    type Target = [Instance];

    fn deref(&self) -> &[Instance] {
        &self.0.instances
    }
}

/// How a call ended without an answer to return.
enum Ended {
    Tried { instance: String, tried: Tried },
    NoInstance,
}

impl balance::Transport for Calling<'_> {
    type Instance = Instance;
    type View = Listed;
    type Reply = Tried;
    type Failure = Ended;

    fn candidates(&self) -> Listed {
        // The view may have changed while a try ran; every try uses the newest one.
        Listed(
            self.inner
                .discovery
                .latest(self.service)
                .unwrap_or_else(|| Arc::clone(&self.first)),
        )
    }

    async fn send(&mut self, instance: &Instance) -> Result<Tried, TryError<Ended>> {
        let tried = transport::send(&self.inner.http, instance, self.call).await;
        match tried.outcome() {
            Outcome::Status(_) => Ok(tried),
            outcome => Err(TryError::Failed(
                outcome,
                Ended::Tried {
                    instance: instance.id.clone(),
                    tried,
                },
            )),
        }
    }

    fn status(reply: &Tried) -> StatusCode {
        match reply.outcome() {
            Outcome::Status(status) => status,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    fn replayable(&self) -> bool {
        true
    }

    fn timed_out(&self, instance: &Instance) -> Ended {
        Ended::Tried {
            instance: instance.id.clone(),
            tried: Tried::Timeout,
        }
    }

    fn unavailable(&self, instance: &Instance, status: StatusCode) -> Ended {
        Ended::Tried {
            instance: instance.id.clone(),
            tried: Tried::Answered {
                status,
                body: Default::default(),
            },
        }
    }

    fn no_instance(&self) -> Ended {
        Ended::NoInstance
    }
}

/// The caller's view of the last try, on `instance`, after `tries` tries in all.
pub(super) fn finish(
    service: &str,
    result: Tried,
    instance: &str,
    tries: usize,
) -> Result<Reply, ClientError> {
    let tries = match tries {
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
