//! menu-service through the real binary: CRUD, filters and pagination, the bad-input table,
//! durability across SIGKILL, and graceful SIGTERM.

mod services_support;

use serde_json::{Value, json};
use services_support::{
    Case, Service, check_cases, delete, eventually, expect_error, get, json, send,
};

fn create(menu: &Service, body: Value) -> Value {
    let (status, item) = json("POST", &menu.url("/menu-items"), &body);
    assert_eq!(status, 201, "{item}");
    item
}

#[test]
fn crud_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let menu = Service::start("menu", dir.path());
    let item = create(
        &menu,
        json!({"venueId": "v1", "name": "Flat white", "priceCents": 450, "category": "coffee"}),
    );
    let id = item["id"].as_str().unwrap();
    assert_eq!(item["available"], true);
    assert_eq!(item["description"], Value::Null);
    assert_eq!(
        get(&menu.url(&format!("/menu-items/{id}"))),
        (200, item.clone())
    );

    let url = menu.url(&format!("/menu-items/{id}"));
    let (status, patched) = json(
        "PATCH",
        &url,
        &json!({"priceCents": 500, "available": false, "category": null}),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["priceCents"], 500);
    assert_eq!(patched["available"], false);
    assert_eq!(patched["category"], Value::Null);
    assert_eq!(patched["name"], "Flat white");
    assert_eq!(get(&url).1, patched);

    assert_eq!(delete(&url).0, 204);
    expect_error(get(&url), 404, "not_found");
    expect_error(delete(&url), 404, "not_found");
}

#[test]
fn list_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let menu = Service::start("menu", dir.path());
    let mut ids = Vec::new();
    for n in 0..5 {
        let venue = if n < 4 { "v1" } else { "v2" };
        let item = create(
            &menu,
            json!({"venueId": venue, "name": format!("item {n}"), "priceCents": n * 100,
                   "available": n != 1}),
        );
        ids.push(item["id"].as_str().unwrap().to_string());
    }
    // Two pages of two, then the rest, following nextCursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = menu.url("/menu-items?venueId=v1&limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(&url);
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids[..4]);

    let (_, page) = get(&menu.url("/menu-items?venueId=v1&available=false"));
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], ids[1].as_str());

    let batch = format!("/menu-items?id={}&id={}&id=missing", ids[0], ids[4]);
    let (_, page) = get(&menu.url(&batch));
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["item 0", "item 4"]);
    assert_eq!(page["nextCursor"], Value::Null);
}

#[test]
fn bad_input_table() {
    let dir = tempfile::tempdir().unwrap();
    let menu = Service::start("menu", dir.path());
    let id = create(
        &menu,
        json!({"venueId": "v1", "name": "Tea", "priceCents": 300}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let item = format!("/menu-items/{id}");
    let big = vec![b' '; 1_100_000];
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/menu-items".into(),
            Some(b"{\"venueId\":"),
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(b""),
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(b"[1]"),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(&big),
            413,
            "body_too_large",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"n"}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"n","priceCents":"1"}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"n","priceCents":1.5}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"n","priceCents":1,"colour":"red"}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"n","priceCents":-1}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"","name":"n","priceCents":1}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"  ","priceCents":1}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"n","priceCents":99999999999}"#),
            422,
            "validation_failed",
        ),
        ("PATCH", item.clone(), Some(b"{}"), 422, "validation_failed"),
        (
            "PATCH",
            item.clone(),
            Some(br#"{"name":null}"#),
            422,
            "validation_failed",
        ),
        (
            "PATCH",
            item.clone(),
            Some(br#"{"venueId":"v2"}"#),
            422,
            "invalid_body",
        ),
        ("PATCH", item.clone(), Some(b"nope"), 400, "malformed_json"),
        (
            "PATCH",
            "/menu-items/missing".into(),
            Some(br#"{"name":"x"}"#),
            404,
            "not_found",
        ),
        ("GET", "/menu-items/missing".into(), None, 404, "not_found"),
        (
            "GET",
            "/menu-items?limit=0".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/menu-items?limit=501".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/menu-items?limit=ten".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/menu-items?available=yes".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/menu-items?venue_id=v1".into(),
            None,
            422,
            "unknown_parameter",
        ),
        (
            "GET",
            "/menu-items?venueId=a&venueId=b".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/menu-items?cursor=".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/menu-items?venueId=..".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"n","priceCents":1,"category":" "}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v","name":"n","priceCents":1,"available":null}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/menu-items".into(),
            Some(br#"{"venueId":"v\\w","name":"n","priceCents":1}"#),
            422,
            "validation_failed",
        ),
        ("GET", "/nowhere".into(), None, 404, "no_route"),
        ("PUT", "/menu-items".into(), None, 405, "method_not_allowed"),
    ];
    check_cases(&menu, &cases);
    let text_plain = send(
        "POST",
        &menu.url("/menu-items"),
        Some(b"{}"),
        &[("content-type", "text/plain")],
    );
    expect_error(text_plain, 415, "unsupported_media_type");
    // Nothing above changed the item.
    assert_eq!(get(&menu.url(&item)).1["name"], "Tea");
}

/// What the OpenAPI document allows, the service takes: `null` for an optional text and a
/// whole number written with a fraction part of zero.
#[test]
fn documented_leniency_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let menu = Service::start("menu", dir.path());
    let item = create(
        &menu,
        json!({"venueId": "v1", "name": "Tea", "priceCents": 191.0, "description": null,
               "category": null}),
    );
    assert_eq!(item["priceCents"], 191);
    assert_eq!(
        (&item["description"], &item["category"]),
        (&Value::Null, &Value::Null)
    );
    let url = menu.url(&format!("/menu-items/{}", item["id"].as_str().unwrap()));
    let (status, patched) = json("PATCH", &url, &json!({"priceCents": 2e2}));
    assert_eq!((status, &patched["priceCents"]), (200, &json!(200)));
    expect_error(
        json("PATCH", &url, &json!({"priceCents": 2.5})),
        422,
        "invalid_body",
    );
}

#[test]
fn acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut menu = Service::start("menu", dir.path());
    let item = create(
        &menu,
        json!({"venueId": "v1", "name": "Scone", "priceCents": 275}),
    );
    menu.kill_and_restart();
    let (status, again) = get(&menu.url(&format!("/menu-items/{}", item["id"].as_str().unwrap())));
    assert_eq!((status, again), (200, item));
}

#[test]
fn sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut menu = Service::start("menu", dir.path());
    create(
        &menu,
        json!({"venueId": "v1", "name": "Bun", "priceCents": 100}),
    );
    let status = menu.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "{status}: {}", menu.logs());
    assert!(menu.logs().contains("database closed"), "{}", menu.logs());
}

#[test]
fn sigterm_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut menu = Service::start_with("menu", dir.path(), &[("RUST_LOG", "debug")]);
    // Hold the database's write lock so the next POST stays in flight.
    let lock = rusqlite::Connection::open(&menu.db_path).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let url = menu.url("/menu-items");
    let post = std::thread::spawn(move || {
        json(
            "POST",
            &url,
            &json!({"venueId": "v1", "name": "Late", "priceCents": 1}),
        )
    });
    eventually("the POST to reach the service", || {
        menu.logs()
            .contains("request started method=POST path=/menu-items")
            .then_some(())
    });
    menu.signal(nix::sys::signal::Signal::SIGTERM);
    eventually("shutdown to begin", || {
        menu.logs().contains("shutting down").then_some(())
    });
    eventually("new connections to be refused", || {
        (get(&menu.url("/health")).0 == 0).then_some(())
    });
    lock.execute_batch("COMMIT").unwrap();
    let (status, item) = post.join().unwrap();
    assert_eq!(status, 201, "{item}");
    assert!(menu.wait_exit().success(), "{}", menu.logs());
    menu.start_again();
    let path = format!("/menu-items/{}", item["id"].as_str().unwrap());
    assert_eq!(get(&menu.url(&path)).1, item);
}

#[test]
fn health_is_503_when_the_database_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let menu = Service::start("menu", dir.path());
    let (status, health) = get(&menu.url("/health"));
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "menu-service");
    assert!(health["version"].is_string());
    std::fs::remove_file(&menu.db_path).unwrap();
    let (status, health) = get(&menu.url("/health"));
    assert_eq!((status, &health["status"]), (503, &json!("unavailable")));
}

#[test]
fn missing_or_bad_port_is_a_clear_error() {
    for (port, wanted) in [(None, "PORT is not set"), (Some("http"), "PORT must be")] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_servio"));
        command.args(["serve", "menu"]).env_remove("PORT");
        if let Some(port) = port {
            command.env("PORT", port);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(wanted), "{stderr}");
    }
}
