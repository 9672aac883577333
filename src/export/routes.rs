//! The gateway's routes in the terms of an ingress: for each route, the Ingress path (a plain
//! `Prefix`, or an ingress-nginx regex whose first group is the upstream path when the route
//! strips a prefix) and the Gateway API `ReplacePrefixMatch` value. Pure, table-tested
//! against what servio's own gateway does (`gateway::routes`): prefixes match whole
//! segments, `strip_prefix` removes a leading part and the rest keeps its leading '/'.

use serde::Serialize;

use crate::manifest::Route;

/// One route as the exports render it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutePlan {
    /// As written in the manifest.
    pub prefix: String,
    /// Without a trailing '/' (Gateway API `PathPrefix`, Ingress `Prefix`); "/" for the root.
    pub path: String,
    pub strip_prefix: Option<String>,
    pub service: String,
    pub port: u16,
    pub port_name: &'static str,
    /// ingress-nginx: the `ImplementationSpecific` regex path; its group 1 is the upstream
    /// path without its leading '/' (the Ingress rewrites to `/$1`).
    pub regex: String,
    /// Gateway API: what the matched prefix becomes upstream ("/" when all of it is stripped).
    pub replace_prefix: String,
}

pub fn plan(route: &Route, port: u16, port_name: &'static str) -> RoutePlan {
    let path = trim_slash(&route.prefix).to_string();
    // What stays of the prefix upstream: servio strips only on a segment boundary (checked
    // when the manifest loads), so this is "" or starts with '/'.
    let strip = route.strip_prefix.as_deref().map(trim_slash).unwrap_or("/");
    let strip = if strip == "/" { "" } else { strip };
    let kept = path.get(strip.len()..).unwrap_or("").trim_matches('/');
    let base = escape(strip);
    let regex = if kept.is_empty() {
        if base.is_empty() {
            "/(.*)".to_string()
        } else {
            format!("{base}(?:/(.*))?$")
        }
    } else {
        format!("{base}/({}(?:/.*)?)$", escape(kept))
    };
    RoutePlan {
        prefix: route.prefix.clone(),
        strip_prefix: route.strip_prefix.clone(),
        service: route.service.clone(),
        port,
        port_name,
        regex,
        replace_prefix: format!("/{kept}"),
        path,
    }
}

fn trim_slash(text: &str) -> &str {
    match text.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// PCRE-escapes everything but letters, digits and `/-_~`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '~')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Balance;

    fn route(prefix: &str, strip: Option<&str>) -> RoutePlan {
        let route = Route {
            prefix: prefix.to_string(),
            service: "web".to_string(),
            strip_prefix: strip.map(str::to_string),
            balance: Balance::LeastRequest,
        };
        plan(&route, 8080, "http")
    }

    #[test]
    fn each_route_maps_to_an_ingress_path_and_a_gateway_api_rewrite() {
        // (prefix, strip_prefix, path, regex, replace_prefix)
        let table = [
            (
                "/api/orders",
                Some("/api"),
                "/api/orders",
                r"/api/(orders(?:/.*)?)$",
                "/orders",
            ),
            (
                "/api/orders/",
                Some("/api/"),
                "/api/orders",
                r"/api/(orders(?:/.*)?)$",
                "/orders",
            ),
            ("/api", Some("/api"), "/api", r"/api(?:/(.*))?$", "/"),
            (
                "/api/orders",
                None,
                "/api/orders",
                r"/(api/orders(?:/.*)?)$",
                "/api/orders",
            ),
            ("/", None, "/", "/(.*)", "/"),
            ("/a/b/c", Some("/a"), "/a/b/c", r"/a/(b/c(?:/.*)?)$", "/b/c"),
            (
                "/v1.0/x+y",
                Some("/v1.0"),
                "/v1.0/x+y",
                r"/v1\.0/(x\+y(?:/.*)?)$",
                "/x+y",
            ),
            (
                "/api/orders",
                Some("/"),
                "/api/orders",
                r"/(api/orders(?:/.*)?)$",
                "/api/orders",
            ),
        ];
        for (prefix, strip, path, regex, replace) in table {
            let plan = route(prefix, strip);
            assert_eq!(
                (
                    plan.path.as_str(),
                    plan.regex.as_str(),
                    plan.replace_prefix.as_str()
                ),
                (path, regex, replace),
                "{prefix} strip {strip:?}"
            );
        }
    }
}
