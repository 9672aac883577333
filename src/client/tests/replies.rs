//! The caller's side's pure parts: error messages, building calls, turning the last try into
//! a reply or an error, and small helpers.

use bytes::Bytes;
use http::{Method, StatusCode};

use super::super::attempts::finish;
use super::super::discovery::retry_delay;
use super::super::transport::{Tried, authority};
use super::super::{Call, ClientError};
use super::support::instance;
use crate::protocol::Health;

#[test]
fn error_messages() {
    let s = || "inventory-service".to_owned();
    let table = [
        (
            ClientError::NoHealthyInstance { service: s() },
            "inventory-service is unavailable: no healthy instance",
            true,
        ),
        (
            ClientError::Unavailable {
                service: s(),
                reason: "inv-1 answered 503 Service Unavailable".into(),
            },
            "inventory-service is unavailable: inv-1 answered 503 Service Unavailable",
            true,
        ),
        (
            ClientError::Timeout { service: s() },
            "inventory-service did not answer in time",
            true,
        ),
        (
            ClientError::Decode {
                service: s(),
                reason: "expected value".into(),
            },
            "inventory-service sent a reply that could not be read: expected value",
            true,
        ),
        (
            ClientError::Registry {
                reason: "cannot connect".into(),
            },
            "the servio registry could not be read: cannot connect",
            false,
        ),
        (
            ClientError::Config("bad".into()),
            "service client: bad",
            false,
        ),
    ];
    for (error, message, has_service) in table {
        assert_eq!(error.to_string(), message);
        assert_eq!(error.service(), has_service.then_some("inventory-service"));
    }
}

#[test]
fn calls() {
    #[derive(serde::Serialize)]
    struct Reserve {
        item: u32,
    }
    let table = [
        (Call::get("/items"), Method::GET, None, true),
        (Call::delete("/items/1"), Method::DELETE, None, true),
        (
            Call::post_json("/reservations", &Reserve { item: 3 }),
            Method::POST,
            Some(r#"{"item":3}"#),
            false,
        ),
        (
            Call::post_json("/orders", &Reserve { item: 3 }).idempotent(true),
            Method::POST,
            Some(r#"{"item":3}"#),
            true,
        ),
        (
            Call::put_json("/items/1", &["a"]),
            Method::PUT,
            Some(r#"["a"]"#),
            true,
        ),
        (
            Call::get("/items").idempotent(false),
            Method::GET,
            None,
            false,
        ),
    ];
    for (call, method, body, idempotent) in table {
        assert_eq!(call.method, method);
        assert_eq!(call.body.as_deref(), body.map(str::as_bytes));
        assert_eq!(call.is_idempotent(), idempotent, "{call:?}");
        assert_eq!(call.check(), Ok(()));
    }
    let unencodable = std::collections::HashMap::from([((1, 2), "tuple keys are not JSON")]);
    let bad = [
        Call::post_json("/x", &unencodable),
        Call::get("items"),
        Call::get("/a b"),
        Call::get(""),
    ];
    for call in bad {
        assert!(
            matches!(call.check(), Err(ClientError::Config(_))),
            "{call:?}"
        );
    }
}

#[test]
fn last_try_to_result() {
    let ok = |code: u16, body: &'static str| Tried::Answered {
        status: StatusCode::from_u16(code).expect("status"),
        body: Bytes::from(body),
    };
    let one = ("menu-1", 1);
    let two = ("menu-2", 2);
    let reply = finish("menu", ok(200, r#"{"a":1}"#), one.0, one.1).expect("a reply");
    assert_eq!((reply.status, reply.service()), (StatusCode::OK, "menu"));
    assert_eq!(reply.json::<serde_json::Value>().expect("json")["a"], 1);
    let decode = reply.json::<Vec<u8>>().expect_err("not a list");
    assert!(
        matches!(&decode, ClientError::Decode { service, .. } if service == "menu"),
        "{decode}"
    );
    for code in [400, 404, 409, 500, 501] {
        assert_eq!(
            finish("menu", ok(code, "{}"), one.0, one.1)
                .expect("a reply")
                .status
                .as_u16(),
            code
        );
    }
    let table = [
        (
            ok(503, ""),
            two,
            "menu is unavailable: menu-2 answered 503 Service Unavailable (tried 2 instances)",
        ),
        (
            ok(502, ""),
            one,
            "menu is unavailable: menu-1 answered 502 Bad Gateway",
        ),
        (
            ok(504, ""),
            one,
            "menu is unavailable: menu-1 answered 504 Gateway Timeout",
        ),
        (
            Tried::ConnectFailed("Connection refused".into()),
            one,
            "menu is unavailable: cannot connect to menu-1: Connection refused",
        ),
        (
            Tried::Broken("reset".into()),
            one,
            "menu is unavailable: the connection to menu-1 broke: reset",
        ),
        (Tried::Timeout, one, "menu did not answer in time"),
        (
            Tried::TooLarge {
                status: StatusCode::OK,
            },
            one,
            "menu sent a reply that could not be read: the 200 OK reply is larger than 16 MiB",
        ),
    ];
    for (tried, names, message) in table {
        assert_eq!(
            finish("menu", tried, names.0, names.1)
                .expect_err("an error")
                .to_string(),
            message
        );
    }
}

#[test]
fn small_helpers() {
    let mut v6 = instance("menu", "m", 80, Health::Healthy);
    v6.address = "::1".into();
    assert_eq!(authority(&v6), "[::1]:80");
    assert_eq!(
        authority(&instance("menu", "m", 81, Health::Healthy)),
        "127.0.0.1:81"
    );
    for (failures, low, high) in [
        (0, 50, 100),
        (1, 50, 100),
        (2, 100, 200),
        (6, 1600, 3200),
        (7, 2500, 5000),
        (u32::MAX, 2500, 5000),
    ] {
        for _ in 0..50 {
            let ms = retry_delay(failures).as_millis();
            assert!((low..=high).contains(&ms), "{failures}: {ms}");
        }
    }
}
