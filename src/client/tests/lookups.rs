//! The registry side's pure parts: admin URLs, service names, watch URLs and the registry's
//! answers.

use std::time::Duration;

use http::StatusCode;

use super::super::registry::{Lookup, parse_admin_url, parse_view, valid_service_name, view_url};
use super::super::{ClientError, ClientOptions, ServiceClient};
use super::support::instance;
use crate::protocol::{Health, ServiceView};

#[test]
fn admin_urls() {
    let table = [
        ("http://127.0.0.1:2999", Some("http://127.0.0.1:2999")),
        ("http://127.0.0.1:2999/", Some("http://127.0.0.1:2999")),
        ("  http://localhost:2999//  ", Some("http://localhost:2999")),
        ("http://[::1]:2999", Some("http://[::1]:2999")),
        ("https://127.0.0.1:2999", None),
        ("127.0.0.1:2999", None),
        ("http://127.0.0.1:2999/v1", None),
        ("http://127.0.0.1:2999?x=1", None),
        ("http://user:pw@127.0.0.1:2999", None),
        ("", None),
        ("http://", None),
        ("not a url at all", None),
    ];
    for (text, want) in table {
        let got = parse_admin_url(text);
        match (want, got) {
            (Some(want), Ok(got)) => assert_eq!(got, want, "{text:?}"),
            (None, Err(ClientError::Config(message))) => {
                assert!(
                    message.contains("SERVIO_ADMIN_URL")
                        && message.contains("http://127.0.0.1:2999"),
                    "{message}"
                );
            }
            (want, got) => panic!("{text:?}: want {want:?}, got {got:?}"),
        }
    }
    assert!(ServiceClient::new("ftp://x", ClientOptions::default()).is_err());
}

#[test]
fn service_names() {
    let table = [
        ("menu-service", true),
        ("inventory_service.v2", true),
        ("", false),
        ("a/b", false),
        ("a b", false),
        ("ü", false),
        ("../x", false),
    ];
    for (name, want) in table {
        assert_eq!(valid_service_name(name), want, "{name:?}");
    }
    assert!(!valid_service_name(&"x".repeat(200)));
}

#[test]
fn view_urls() {
    let base = "http://127.0.0.1:2999";
    let table = [
        (None, "http://127.0.0.1:2999/v1/services/menu?healthy=true"),
        (
            Some((7, Duration::from_secs(30))),
            "http://127.0.0.1:2999/v1/services/menu?healthy=true&index=7&wait=30s",
        ),
        (
            Some((0, Duration::from_millis(1500))),
            "http://127.0.0.1:2999/v1/services/menu?healthy=true&index=0&wait=1500ms",
        ),
    ];
    for (watch, want) in table {
        assert_eq!(view_url(base, "menu", watch), want);
    }
}

#[test]
fn registry_answers() {
    let view = ServiceView {
        index: 9,
        name: "menu".to_owned(),
        version: "1.0.0".to_owned(),
        instances: vec![
            instance("menu", "menu-1", 3002, Health::Healthy),
            instance("menu", "menu-2", 3003, Health::Unhealthy),
        ],
    };
    let json = serde_json::to_vec(&view).expect("serializable");
    let found = parse_view("menu", StatusCode::OK, &json).expect("parsed");
    let Lookup::Found { index, healthy } = found else {
        panic!("found: {found:?}")
    };
    assert_eq!(
        (index, healthy.len(), healthy[0].id.as_str()),
        (9, 1, "menu-1")
    );

    let not_found = br#"{"error":{"code":"service_not_found","message":"no service named menu"}}"#;
    assert_eq!(
        parse_view("menu", StatusCode::NOT_FOUND, not_found),
        Ok(Lookup::NotFound)
    );
    // (status, body, words the reason must contain)
    let failures: [(StatusCode, &[u8], &str); 4] = [
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":{"code":"internal","message":"disk on fire"}}"#,
            "disk on fire",
        ),
        (StatusCode::BAD_REQUEST, b"plain text", "plain text"),
        (StatusCode::OK, b"{not json", "not a service view"),
        (StatusCode::OK, br#"{"index":1}"#, "not a service view"),
    ];
    for (status, body, words) in failures {
        let reason = parse_view("menu", status, body).expect_err("a failure");
        assert!(reason.contains(words), "{status}: {reason}");
    }
}
