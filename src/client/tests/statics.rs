//! Static endpoints (`SERVIO_ENDPOINTS_*`): the variable names, the parser, and calls that
//! find their instances through the resolver instead of a registry.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::super::endpoints::{self, HostPort, env_var, from_vars, parse};
use super::support::{Behaviour, Registry, Upstream, dead_port};
use crate::client::{Call, ClientError, ClientOptions, ServiceClient};

fn hp(host: &str, port: u16) -> HostPort {
    HostPort {
        host: host.to_owned(),
        port,
    }
}

#[test]
fn variable_names_are_upper_snake_case() {
    let table = [
        ("menu-service", "SERVIO_ENDPOINTS_MENU_SERVICE"),
        ("inventory-service", "SERVIO_ENDPOINTS_INVENTORY_SERVICE"),
        ("v2", "SERVIO_ENDPOINTS_V2"),
        ("a.b_c", "SERVIO_ENDPOINTS_A_B_C"),
    ];
    for (service, want) in table {
        assert_eq!(env_var(service), want, "{service}");
    }
}

#[test]
fn endpoint_lists_parse() {
    let table: [(&str, Result<Vec<HostPort>, &str>); 12] = [
        ("menu-service:3002", Ok(vec![hp("menu-service", 3002)])),
        (
            " a:1 , b.ns.svc.cluster.local:2 ,",
            Ok(vec![hp("a", 1), hp("b.ns.svc.cluster.local", 2)]),
        ),
        ("10.0.0.7:80", Ok(vec![hp("10.0.0.7", 80)])),
        ("[::1]:8080", Ok(vec![hp("::1", 8080)])),
        ("", Err("lists no host:port")),
        (" , ", Err("lists no host:port")),
        ("menu-service", Err("has no port")),
        ("menu-service:0", Err("from 1 to 65535")),
        ("menu-service:70000", Err("from 1 to 65535")),
        (":3002", Err("no valid host")),
        ("a b:1", Err("no valid host")),
        ("[nope]:1", Err("not an IPv6")),
    ];
    for (text, want) in table {
        match (parse(text), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{text:?}"),
            (Err(got), Err(want)) => {
                assert!(got.contains(want), "{text:?}: {got}");
                assert!(got.contains("host:port"), "says what to write: {got}");
            }
            (got, want) => panic!("{text:?}: want {want:?}, got {got:?}"),
        }
    }
    assert_eq!(hp("::1", 1).to_string(), "[::1]:1");
}

#[test]
fn only_endpoint_variables_are_read_and_bad_ones_are_named() {
    let vars = [
        ("PATH", "/bin"),
        ("SERVIO_ENDPOINTS_", "x:1"),
        ("SERVIO_ENDPOINTS_MENU_SERVICE", "menu-service:3002"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let found = from_vars(vars).expect("valid");
    assert_eq!(
        found,
        BTreeMap::from([(
            "SERVIO_ENDPOINTS_MENU_SERVICE".to_owned(),
            vec![hp("menu-service", 3002)]
        )])
    );
    let bad = from_vars([("SERVIO_ENDPOINTS_X".to_owned(), "x".to_owned())]).unwrap_err();
    assert!(bad.starts_with("SERVIO_ENDPOINTS_X: "), "{bad}");
}

#[test]
fn resolved_addresses_become_distinct_instances() {
    let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let resolved = [(hp("web", 80), vec![a, b]), (hp("10.0.0.1", 80), vec![a])];
    let found = endpoints::instances("web", &resolved);
    let ids: Vec<&str> = found.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["web:80 (10.0.0.1)", "web:80 (10.0.0.2)"]);
    assert!(found.iter().all(|i| i.port == 80 && !i.managed));
}

fn statics(service: &str, value: &str) -> BTreeMap<String, Vec<HostPort>> {
    BTreeMap::from([(env_var(service), parse(value).expect("valid"))])
}

#[tokio::test]
async fn calls_reach_static_endpoints_by_name_without_a_registry() {
    let upstream = Upstream::start("menu-service", "menu-1", Behaviour::Echo).await;
    let port = upstream.instance.port;
    // `localhost` goes through the resolver, as a Kubernetes Service name would.
    let client = ServiceClient::with_sources(
        None,
        statics("menu-service", &format!("localhost:{port}")),
        ClientOptions::default(),
    )
    .expect("client");
    let reply = client
        .call("menu-service", Call::get("/menu-items"))
        .await
        .expect("the static endpoint answers");
    let echo: serde_json::Value = reply.json().expect("json");
    assert_eq!(echo["instance"], "menu-1");
    assert!(upstream.hits() >= 1);

    // A service with neither static endpoints nor a registry is a configuration error
    // naming the variable to set.
    let error = client
        .call("inventory-service", Call::get("/"))
        .await
        .expect_err("no source");
    assert!(
        matches!(&error, ClientError::Config(m) if m.contains("SERVIO_ENDPOINTS_INVENTORY_SERVICE")),
        "{error}"
    );
}

#[tokio::test]
async fn static_endpoints_win_over_the_registry() {
    let registry = Registry::start().await;
    let listed = Upstream::start("menu-service", "from-registry", Behaviour::Echo).await;
    registry.set("menu-service", vec![listed.instance.clone()]);
    let pinned = Upstream::start("menu-service", "pinned", Behaviour::Echo).await;
    let client = ServiceClient::with_sources(
        Some(&registry.url),
        statics(
            "menu-service",
            &format!("127.0.0.1:{}", pinned.instance.port),
        ),
        ClientOptions::default(),
    )
    .expect("client");
    for _ in 0..3 {
        let reply = client
            .call("menu-service", Call::get("/"))
            .await
            .expect("answer");
        let echo: serde_json::Value = reply.json().expect("json");
        assert_eq!(echo["instance"], "pinned");
    }
    assert_eq!(listed.hits(), 0);
}

#[tokio::test]
async fn unresolvable_names_are_an_error_naming_the_variable() {
    let client = ServiceClient::with_sources(
        None,
        statics("menu-service", "no-such-host.invalid:3002"),
        ClientOptions::default(),
    )
    .expect("client");
    let error = client
        .call("menu-service", Call::get("/"))
        .await
        .expect_err("does not resolve");
    assert!(
        matches!(&error, ClientError::Unresolved { variable, .. } if variable == "SERVIO_ENDPOINTS_MENU_SERVICE"),
        "{error}"
    );
    assert_eq!(error.service(), Some("menu-service"));

    // Resolvable but down: the usual "unavailable", after trying it.
    let client = ServiceClient::with_sources(
        None,
        statics("menu-service", &format!("127.0.0.1:{}", dead_port())),
        ClientOptions::default(),
    )
    .expect("client");
    let error = client
        .call("menu-service", Call::get("/"))
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(&error, ClientError::Unavailable { reason, .. } if reason.contains("cannot connect")),
        "{error}"
    );
}
