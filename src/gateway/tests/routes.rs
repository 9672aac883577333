//! Route matching, prefix stripping and request-target safety, one table row per case.

use std::sync::Arc;

use http::{Method, Uri, Version};

use crate::balance::{BalanceConfig, ServiceBalancer};
use crate::gateway::routes::{CompiledRoute, RouteTable, check_path, check_target};

fn route(prefix: &str, strip: Option<&str>, service: &str) -> CompiledRoute {
    let balancer = Arc::new(ServiceBalancer::new(service, BalanceConfig::default()));
    CompiledRoute::new(prefix, strip, service, balancer, None)
}

fn table() -> RouteTable {
    RouteTable::new(vec![
        route("/api", None, "api"),
        route("/api/orders", Some("/api"), "orders"),
        route("/api/orders/special/", None, "special"),
        route("/static/", Some("/static/"), "files"),
    ])
}

#[test]
fn the_longest_prefix_wins_on_segment_boundaries() {
    let table = table();
    for (path, expected) in [
        ("/api", Some("api")),
        ("/api/", Some("api")),
        ("/api/menu", Some("api")),
        ("/apix", None),
        ("/api/orders", Some("orders")),
        ("/api/orders/", Some("orders")),
        ("/api/orders/7", Some("orders")),
        ("/api/ordersX", Some("api")),
        ("/api/orders/special", Some("special")),
        ("/api/orders/special/1", Some("special")),
        ("/api/orders/specialist", Some("orders")),
        ("/static", Some("files")),
        ("/static/a.css", Some("files")),
        ("/", None),
        ("/API", None),
    ] {
        let found = table.find(path).map(|r| &*r.service);
        assert_eq!(found, expected, "{path}");
    }
    let labels: Vec<&str> = table.routes().iter().map(|r| &*r.label).collect();
    assert_eq!(
        labels[..2],
        ["/api", "/api/orders"],
        "the manifest's order is kept"
    );
}

#[test]
fn a_root_route_catches_everything_else() {
    let table = RouteTable::new(vec![route("/", None, "web"), route("/api", None, "api")]);
    assert_eq!(table.find("/").map(|r| &*r.service), Some("web"));
    assert_eq!(table.find("/x/y").map(|r| &*r.service), Some("web"));
    assert_eq!(table.find("/api/1").map(|r| &*r.service), Some("api"));
}

#[test]
fn strip_prefix_keeps_a_leading_slash_and_the_query() {
    let orders = route("/api/orders", Some("/api"), "orders");
    let files = route("/static/", Some("/static/"), "files");
    let plain = route("/api", None, "api");
    for (route, path, query, expected) in [
        (&orders, "/api/orders/7", None, "/orders/7"),
        (&orders, "/api/orders", Some("x=1&y"), "/orders?x=1&y"),
        (&files, "/static/a.css", None, "/a.css"),
        (&files, "/static", None, "/"),
        (&files, "/static", Some("v=2"), "/?v=2"),
        (&plain, "/api/menu", Some("a=b"), "/api/menu?a=b"),
    ] {
        assert_eq!(route.rewrite(path, query), expected, "{path} {query:?}");
    }
}

#[test]
fn only_plain_origin_form_targets_pass() {
    let http1 = Version::HTTP_11;
    let ok = |method: Method, target: &str, version: Version| {
        let uri: Uri = target.parse().expect("a URI");
        check_target(&method, &uri, version)
    };
    assert_eq!(ok(Method::GET, "/api/orders?x=../..", http1), Ok(()));
    assert!(ok(Method::GET, "http://127.0.0.1:2999/metrics", http1).is_err());
    assert!(
        ok(
            Method::GET,
            "http://127.0.0.1:2999/metrics",
            Version::HTTP_10
        )
        .is_err()
    );
    assert!(ok(Method::CONNECT, "127.0.0.1:22", http1).is_err());
    assert!(ok(Method::OPTIONS, "*", http1).is_err());
    // HTTP/2 carries scheme and authority in pseudo-headers: the path is what counts.
    assert_eq!(ok(Method::GET, "http://gw/api/x", Version::HTTP_2), Ok(()));
    assert!(ok(Method::GET, "http://gw/api/../x", Version::HTTP_2).is_err());
}

#[test]
fn paths_that_could_climb_out_of_a_route_are_refused() {
    for good in [
        "/api/orders/7",
        "/api/orders/",
        "/api/orders/..x",
        "/api/orders/x..",
        "/api/orders/.well-known",
        "/api/orders/%41%62",
        "/api/orders/a%20b",
        "//api/orders",
    ] {
        assert_eq!(check_path(good), Ok(()), "{good}");
    }
    for bad in [
        "/api/orders/..",
        "/api/orders/../admin",
        "/api/orders/./x",
        "/api/orders/%2e%2e/x",
        "/api/orders/%2E%2E/x",
        "/api/orders/.%2e/x",
        "/api/orders/%2e/x",
        "/api/orders/..;/admin",
        "/api/orders/%2e%2e;x/admin",
        "/api/orders%2f..%2fadmin",
        "/api/orders/..%2Fadmin",
        "/api/orders/%5c..%5cadmin",
        "/api/orders\\..\\admin",
        "/api/orders/%00",
        "/api/orders/%zz",
        "/api/orders/%2",
        "/api/orders/%+f",
    ] {
        assert!(check_path(bad).is_err(), "{bad} passed");
    }
}

#[test]
fn public_paths_put_the_strip_back_and_stay_on_their_route() {
    let table = table();
    let [api, orders, special, files] = table.routes() else {
        panic!("four routes")
    };
    for (route, service_path, expected) in [
        (orders, "/orders", Some("/api/orders")),
        (orders, "/orders/{id}", Some("/api/orders/{id}")),
        (orders, "/health", None),
        (orders, "/ordersX", None),
        (orders, "/orders/special", None),
        (orders, "orders", None),
        (api, "/api/menu", Some("/api/menu")),
        (api, "/api", Some("/api")),
        (api, "/menu", None),
        (api, "/api/orders/7", None),
        (
            special,
            "/api/orders/special/{id}",
            Some("/api/orders/special/{id}"),
        ),
        (files, "/", Some("/static")),
        (files, "/a.css", Some("/static/a.css")),
    ] {
        let public = table.public_path(route, service_path);
        assert_eq!(
            public.as_deref(),
            expected,
            "{} {service_path}",
            route.label
        );
        if let Some(public) = public {
            assert_eq!(route.rewrite(&public, None), service_path, "round trip");
        }
    }
}
