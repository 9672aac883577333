//! Which route a request takes, and whether its target may be proxied at all. Pure code:
//!
//! - [`check_target`]: only origin-form targets (`/path?query`) of ordinary methods pass;
//!   absolute-form (`GET http://host/x`), authority-form (CONNECT), `*`, and paths with `.`
//!   or `..` segments (raw, percent-encoded or before a `;`), encoded slashes or backslashes,
//!   NUL or a raw backslash are refused, so no path can climb out of its route upstream.
//! - [`RouteTable::find`]: the longest prefix that matches on a segment boundary
//!   (`/api/orders` matches `/api/orders` and `/api/orders/7`, never `/api/ordersX`).
//! - [`CompiledRoute::rewrite`]: strips `strip_prefix`, keeps the query.
//! - [`RouteTable::public_path`]: the other way, for the gateway's /openapi.json: where a
//!   service's path is reached through a route, if it is at all.
//!
//! Matching compares raw (still percent-encoded) bytes: `/api/%6Frders` matches no route,
//! which is safe: nothing is proxied that a route did not name.

use std::borrow::Cow;
use std::sync::Arc;

use http::{Method, Uri, Version};

use super::metrics::RouteMetrics;
use crate::balance::ServiceBalancer;

/// One route, ready for matching.
#[derive(Debug)]
pub struct CompiledRoute {
    /// As written in the manifest: the route's label in metrics.
    pub label: Arc<str>,
    /// Without a trailing '/' (except the root route "/").
    prefix: Box<str>,
    strip: Option<Box<str>>,
    pub service: Arc<str>,
    pub balancer: Arc<ServiceBalancer>,
    pub metrics: Arc<RouteMetrics>,
}

impl CompiledRoute {
    pub fn new(
        prefix: &str,
        strip: Option<&str>,
        service: &str,
        balancer: Arc<ServiceBalancer>,
        metrics: Option<Arc<RouteMetrics>>,
    ) -> Self {
        let (label, service): (Arc<str>, Arc<str>) = (Arc::from(prefix), Arc::from(service));
        let metrics =
            metrics.unwrap_or_else(|| Arc::new(RouteMetrics::new(label.clone(), service.clone())));
        CompiledRoute {
            prefix: trim_slash(prefix).into(),
            strip: strip.map(|s| trim_slash(s).into()),
            label,
            service,
            balancer,
            metrics,
        }
    }

    /// Whether `path` lies under this route's prefix, on a segment boundary.
    pub fn matches(&self, path: &str) -> bool {
        under(&self.prefix, path)
    }

    /// The path and query to send upstream: `path` without `strip_prefix`, always starting
    /// with '/', and the query unchanged.
    pub fn rewrite<'a>(&self, path: &'a str, query: Option<&str>) -> Cow<'a, str> {
        let rest = match &self.strip {
            Some(strip) if under(strip, path) && strip.as_ref() != "/" => {
                path.get(strip.len()..).unwrap_or(path)
            }
            _ => path,
        };
        let slash = if rest.starts_with('/') { "" } else { "/" };
        match query {
            None if slash.is_empty() => Cow::Borrowed(rest),
            None => Cow::Owned(format!("/{rest}")),
            Some(query) => Cow::Owned(format!("{slash}{rest}?{query}")),
        }
    }
}

impl CompiledRoute {
    /// The path a client sends to reach `service_path` through this route, if one does:
    /// `strip_prefix` put back in front, then the result must lie under the prefix (without
    /// `strip_prefix`, `service_path` itself must).
    pub fn public_path(&self, service_path: &str) -> Option<String> {
        let public = match self.strip.as_deref() {
            Some(strip) if strip != "/" && service_path == "/" => strip.to_string(),
            Some(strip) if strip != "/" => format!("{strip}{service_path}"),
            _ => service_path.to_string(),
        };
        (service_path.starts_with('/') && self.matches(&public)).then_some(public)
    }
}

fn trim_slash(text: &str) -> &str {
    match text.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// `prefix` (no trailing '/', or "/") covers `path` on a segment boundary.
fn under(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || (path.starts_with(prefix)
            && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

/// Every route, longest prefix first.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<CompiledRoute>>,
    /// `order[i]` is the index in `routes` of the i-th longest prefix.
    order: Vec<usize>,
}

impl RouteTable {
    /// The routes in manifest order.
    pub fn new(routes: Vec<CompiledRoute>) -> Self {
        let routes: Vec<Arc<CompiledRoute>> = routes.into_iter().map(Arc::new).collect();
        let mut order: Vec<usize> = (0..routes.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(routes[i].prefix.len()));
        RouteTable { routes, order }
    }

    /// The route for `path`, or `None` (404).
    pub fn find(&self, path: &str) -> Option<&Arc<CompiledRoute>> {
        self.order
            .iter()
            .map(|&i| &self.routes[i])
            .find(|route| route.matches(path))
    }

    pub fn routes(&self) -> &[Arc<CompiledRoute>] {
        &self.routes
    }

    /// The path a client sends to reach `service_path` of `route`'s service through `route`:
    /// [`CompiledRoute::public_path`], and no longer prefix of another route takes it.
    pub fn public_path(&self, route: &Arc<CompiledRoute>, service_path: &str) -> Option<String> {
        let public = route.public_path(service_path)?;
        let taken_by = self.find(&public)?;
        Arc::ptr_eq(taken_by, route).then_some(public)
    }
}

/// Why a request target is refused (400).
pub fn check_target(method: &Method, uri: &Uri, version: Version) -> Result<(), &'static str> {
    if method == Method::CONNECT {
        return Err("CONNECT is not proxied");
    }
    // HTTP/2 carries scheme and authority in pseudo-headers: only HTTP/1 has absolute-form.
    if version < Version::HTTP_2 && (uri.scheme().is_some() || uri.authority().is_some()) {
        return Err("absolute-form targets are not proxied; send the path only");
    }
    let path = uri.path();
    if !path.starts_with('/') {
        return Err("the target must be a path starting with '/'");
    }
    check_path(path)
}

/// [`check_target`] for a request target as an HTTP/1.1 request line carries it: only
/// origin-form passes, split into its path and query.
pub fn check_origin_target<'a>(
    method: &Method,
    target: &'a str,
) -> Result<(&'a str, Option<&'a str>), &'static str> {
    if method == Method::CONNECT {
        return Err("CONNECT is not proxied");
    }
    if !target.starts_with('/') {
        return Err(if target.contains("://") {
            "absolute-form targets are not proxied; send the path only"
        } else {
            "the target must be a path starting with '/'"
        });
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    check_path(path)?;
    Ok((path, query))
}

/// Refuses paths that could name something outside the route once the upstream decodes them.
pub fn check_path(path: &str) -> Result<(), &'static str> {
    // Without a dot, a percent sign or a backslash no segment can be any of these.
    if !path.bytes().any(|b| matches!(b, b'.' | b'%' | b'\\')) {
        return Ok(());
    }
    if path.contains('\\') {
        return Err("the path contains a backslash");
    }
    for segment in path.split('/') {
        let decoded = decode_segment(segment)?;
        // Some servers read `..;x` as `..`: judge the part before a ';'.
        let name = decoded.split(';').next().unwrap_or_default();
        if name == "." || name == ".." {
            return Err("the path contains a '.' or '..' segment");
        }
    }
    Ok(())
}

/// A segment with its percent-escapes decoded; escapes that change what a segment is
/// (slash, backslash, NUL) or are malformed are refused.
fn decode_segment(segment: &str) -> Result<Cow<'_, str>, &'static str> {
    if !segment.contains('%') {
        return Ok(Cow::Borrowed(segment));
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let broken = "the path has a broken %-escape";
        let hex = bytes.get(i + 1..i + 3).ok_or(broken)?;
        let (Some(high), Some(low)) = (hex_value(hex[0]), hex_value(hex[1])) else {
            return Err(broken);
        };
        let value = high << 4 | low;
        if matches!(value, b'/' | b'\\' | 0) {
            return Err("the path contains an encoded '/', '\\' or NUL");
        }
        out.push(value);
        i += 3;
    }
    Ok(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}
