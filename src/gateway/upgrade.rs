//! Upgrade tunnels (WebSocket and friends): once the instance answered 101 and hyper handed
//! over both connections, bytes are copied both ways until either side closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Copies between the client's and the instance's upgraded connections until one closes.
pub async fn tunnel(client: OnUpgrade, instance: OnUpgrade) {
    let (client, instance) = match tokio::try_join!(client, instance) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut instance = TokioIo::new(instance);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut instance).await {
        tracing::debug!(%error, "upgraded connection ended");
    }
}
