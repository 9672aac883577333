//! Unit tests of the service client: the pure parts table by table, then the HTTP path
//! against real servers on loopback (see `support`).

mod calls;
mod discovery;
mod lookups;
mod replies;
mod statics;
mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use super::{ClientOptions, ServiceClient};

/// A client of the registry at `url` whose breakers and budget behave as in production.
fn client(url: &str, options: ClientOptions) -> ServiceClient {
    ServiceClient::new(url, options).expect("a valid admin URL")
}

/// Runs `check` until it returns true or `limit` passes; false on timeout.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
