//! `[gateway]` → the resolved [`Gateway`]: its routes (prefix, strip_prefix, balance), its
//! timeouts, size and connection limits and retries, with the documented defaults for
//! everything left out. Each value is checked where it is written.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use super::diagnostics::Diagnostics;
use super::raw::{RawBalance, RawGateway, RawRoute};
use super::resolve::{DEFAULT_GATEWAY_PORT, SIZE_FIX, bad_size, duration, size_value};
use super::{Balance, Gateway, Route};

/// More extra tries than this only multiply an outage.
const MAX_RETRIES: u32 = 10;

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            port: DEFAULT_GATEWAY_PORT,
            routes: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            per_try_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(15),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_body: 10 << 20,
            max_connections: 4096,
            max_concurrent: 1024,
            retries: 1,
        }
    }
}

pub(super) fn resolve(raw: Option<&RawGateway>, diag: &mut Diagnostics) -> Gateway {
    let mut gateway = Gateway::default();
    let Some(raw) = raw else { return gateway };
    if let Some(port) = &raw.port {
        gateway.port = *port.get_ref();
    }
    gateway.routes = routes(raw.routes.as_deref().unwrap_or_default(), diag);

    let timeouts = [
        (
            "connect_timeout",
            &raw.connect_timeout,
            &mut gateway.connect_timeout,
        ),
        (
            "request_timeout",
            &raw.request_timeout,
            &mut gateway.request_timeout,
        ),
        (
            "header_read_timeout",
            &raw.header_read_timeout,
            &mut gateway.header_read_timeout,
        ),
        ("idle_timeout", &raw.idle_timeout, &mut gateway.idle_timeout),
    ];
    for (leaf, value, slot) in timeouts {
        *slot = positive_duration(diag, value.as_ref(), leaf, *slot);
    }
    let per_try = raw.per_try_timeout.as_ref();
    gateway.per_try_timeout =
        positive_duration(diag, per_try, "per_try_timeout", gateway.request_timeout);
    if let Some(value) = per_try
        && gateway.per_try_timeout > gateway.request_timeout
    {
        let message = format!(
            "per_try_timeout ({}) is longer than request_timeout ({})",
            humantime::format_duration(gateway.per_try_timeout),
            humantime::format_duration(gateway.request_timeout)
        );
        let fix = "make it at most request_timeout: no try outlasts its request";
        diag.at(&value.span(), "gateway.per_try_timeout", message, fix);
    }

    if let Some(size) = &raw.max_body {
        match size_value(size.get_ref()) {
            Some(bytes) if bytes > 0 => gateway.max_body = bytes,
            _ => diag.at(
                &size.span(),
                "gateway.max_body",
                bad_size(size.get_ref()),
                SIZE_FIX,
            ),
        }
    }
    for (leaf, value, slot) in [
        (
            "max_connections",
            &raw.max_connections,
            &mut gateway.max_connections,
        ),
        (
            "max_concurrent",
            &raw.max_concurrent,
            &mut gateway.max_concurrent,
        ),
    ] {
        let Some(value) = value else { continue };
        if *value.get_ref() == 0 {
            let message = format!("{leaf} must be at least 1");
            let fix = "write a limit like 1024, or remove the key for the default";
            diag.at(&value.span(), &format!("gateway.{leaf}"), message, fix);
        } else {
            *slot = *value.get_ref();
        }
    }
    if let Some(retries) = &raw.retries {
        if *retries.get_ref() > MAX_RETRIES {
            let message = format!("retries must be at most {MAX_RETRIES}");
            let fix = "write 0 to never retry, or 1 or 2: each retry goes to another instance";
            diag.at(&retries.span(), "gateway.retries", message, fix);
        } else {
            gateway.retries = *retries.get_ref();
        }
    }
    gateway
}

fn positive_duration(
    diag: &mut Diagnostics,
    value: Option<&Spanned<String>>,
    leaf: &str,
    default: Duration,
) -> Duration {
    let key = format!("gateway.{leaf}");
    let parsed = duration(diag, value, &key, default);
    match value {
        Some(value) if parsed.is_zero() => {
            let message = format!("`{leaf}` must be longer than 0");
            diag.at(&value.span(), &key, message, "write a duration like \"5s\"");
            default
        }
        _ => parsed,
    }
}

/// The routes in file order. A service's balance is the one any of its routes sets; two
/// routes to one service that set different ones are an error.
fn routes(raw: &[Spanned<RawRoute>], diag: &mut Diagnostics) -> Vec<Route> {
    let mut balances: BTreeMap<&str, RawBalance> = BTreeMap::new();
    for (i, route) in raw.iter().enumerate() {
        let route = route.get_ref();
        let key = format!("gateway.routes[{i}]");
        check_prefix(diag, &route.prefix, &format!("{key}.prefix"));
        if let Some(strip) = &route.strip_prefix {
            check_strip(diag, route, strip, &format!("{key}.strip_prefix"));
        }
        let Some(balance) = &route.balance else {
            continue;
        };
        let service = route.service.get_ref().as_str();
        match balances.get(service) {
            Some(first) if first != balance.get_ref() => {
                let message = format!("routes to `{service}` disagree on `balance`");
                let fix = "balance is per service: give every route to it the same value";
                diag.at(&balance.span(), &format!("{key}.balance"), message, fix);
            }
            _ => {
                balances.insert(service, *balance.get_ref());
            }
        }
    }
    raw.iter()
        .map(|route| {
            let route = route.get_ref();
            let balance = match balances.get(route.service.get_ref().as_str()) {
                Some(RawBalance::RoundRobin) => Balance::RoundRobin,
                Some(RawBalance::LeastRequest) | None => Balance::LeastRequest,
            };
            Route {
                prefix: route.prefix.get_ref().clone(),
                service: route.service.get_ref().clone(),
                strip_prefix: route.strip_prefix.as_ref().map(|s| s.get_ref().clone()),
                balance,
            }
        })
        .collect()
}

/// A prefix is a plain absolute path: it is compared with request paths byte for byte.
fn check_prefix(diag: &mut Diagnostics, prefix: &Spanned<String>, key: &str) {
    let text = prefix.get_ref();
    if !text.starts_with('/') {
        diag.at(
            &prefix.span(),
            key,
            format!("prefix `{text}` does not start with '/'"),
            &format!("write a path, like \"/{text}\""),
        );
        return;
    }
    let odd_char = text
        .chars()
        .any(|c| !c.is_ascii_graphic() || matches!(c, '?' | '#' | '%' | '\\'));
    // Empty segments are `//`, except the last one: a trailing '/' is allowed.
    let segments: Vec<&str> = text.get(1..).unwrap_or_default().split('/').collect();
    let last = segments.len().saturating_sub(1);
    let odd_segment = segments
        .iter()
        .enumerate()
        .any(|(i, segment)| matches!(*segment, "." | "..") || (segment.is_empty() && i != last));
    if odd_char || odd_segment {
        diag.at(
            &prefix.span(),
            key,
            format!("prefix `{text}` is not a plain path"),
            "write segments of letters, digits and -._~, like \"/api/orders\" (no \
'.', '..', '//', '%', '?' or '#')",
        );
    }
}

fn check_strip(diag: &mut Diagnostics, route: &RawRoute, strip: &Spanned<String>, key: &str) {
    check_prefix(diag, strip, key);
    let (prefix, text) = (route.prefix.get_ref(), strip.get_ref());
    if !prefix.starts_with(text.as_str()) {
        diag.at(
            &strip.span(),
            key,
            format!("`{text}` is not a prefix of the route's prefix `{prefix}`"),
            "strip a leading part of `prefix`, like \"/api\" for \"/api/orders\"",
        );
    } else if !(text.ends_with('/') || prefix.len() == text.len())
        && prefix.as_bytes().get(text.len()) != Some(&b'/')
    {
        diag.at(
            &strip.span(),
            key,
            format!("`{text}` ends inside a segment of `{prefix}`"),
            "strip whole segments, like \"/api\" for \"/api/orders\"",
        );
    }
}
