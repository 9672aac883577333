//! Finding instances: registry errors, unknown services, and the watch that keeps the cache
//! fresh and keeps it in use while the registry is away.

use std::time::Duration;

use super::support::{Behaviour, Registry, Upstream, dead_port};
use super::{client, eventually};
use crate::client::{Call, ClientError, ClientOptions, ServiceClient};

const INVENTORY: &str = "inventory-service";

async fn served_by(client: &ServiceClient) -> Option<String> {
    let reply = client.call(INVENTORY, Call::get("/stock")).await.ok()?;
    let echo: serde_json::Value = reply.json().ok()?;
    Some(echo["instance"].as_str()?.to_owned())
}

#[tokio::test]
async fn an_unreachable_registry_is_a_registry_error() {
    let client = client(
        &format!("http://127.0.0.1:{}", dead_port()),
        ClientOptions::default(),
    );
    let error = client
        .call(INVENTORY, Call::get("/"))
        .await
        .expect_err("no registry");
    assert!(
        matches!(&error, ClientError::Registry { reason } if reason.contains("cannot connect") && reason.contains("servio up")),
        "{error}"
    );
    assert_eq!(error.service(), None);
}

#[tokio::test]
async fn an_unknown_service_is_found_once_registered() {
    let registry = Registry::start().await;
    let client = client(&registry.url, ClientOptions::default());
    let error = client
        .call(INVENTORY, Call::get("/"))
        .await
        .expect_err("unknown");
    assert_eq!(
        error.to_string(),
        "the servio registry could not be read: it lists no service named `inventory-service`; check services.toml"
    );
    let upstream = Upstream::start(INVENTORY, "inventory-1", Behaviour::Echo).await;
    registry.set(INVENTORY, vec![upstream.instance.clone()]);
    assert!(
        eventually(Duration::from_secs(10), || async {
            served_by(&client).await.is_some()
        })
        .await
    );
}

#[tokio::test]
async fn invalid_names_fail_before_any_lookup() {
    let client = client("http://127.0.0.1:1", ClientOptions::default());
    for name in ["", "a/b", "menu service"] {
        assert!(
            matches!(
                client.call(name, Call::get("/")).await,
                Err(ClientError::Config(_))
            ),
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn the_watch_follows_registry_changes() {
    let registry = Registry::start().await;
    let first = Upstream::start(INVENTORY, "inventory-1", Behaviour::Echo).await;
    let second = Upstream::start(INVENTORY, "inventory-2", Behaviour::Echo).await;
    registry.set(INVENTORY, vec![first.instance.clone()]);
    let client = client(&registry.url, ClientOptions::default());
    assert_eq!(served_by(&client).await.as_deref(), Some("inventory-1"));

    registry.set(INVENTORY, vec![second.instance.clone()]);
    assert!(
        eventually(Duration::from_secs(5), || async {
            served_by(&client).await.as_deref() == Some("inventory-2")
        })
        .await
    );
    assert!(
        client.stats()[0]
            .instances
            .iter()
            .all(|i| i.id == "inventory-2"),
        "the gone instance is forgotten"
    );

    registry.set(INVENTORY, Vec::new());
    let none = || async {
        matches!(
            client.call(INVENTORY, Call::get("/")).await,
            Err(ClientError::NoHealthyInstance { .. })
        )
    };
    assert!(eventually(Duration::from_secs(5), none).await);
}

#[tokio::test]
async fn the_cache_stays_in_use_while_the_registry_is_away() {
    let registry = Registry::start().await;
    let upstream = Upstream::start(INVENTORY, "inventory-1", Behaviour::Echo).await;
    registry.set(INVENTORY, vec![upstream.instance.clone()]);
    let client = client(&registry.url, ClientOptions::default());
    assert_eq!(served_by(&client).await.as_deref(), Some("inventory-1"));

    registry.stop();
    let address = registry.url.trim_start_matches("http://").to_owned();
    let refused = || async { tokio::net::TcpStream::connect(&address).await.is_err() };
    assert!(
        eventually(Duration::from_secs(5), refused).await,
        "the registry stopped"
    );
    for _ in 0..5 {
        assert_eq!(served_by(&client).await.as_deref(), Some("inventory-1"));
    }
}
