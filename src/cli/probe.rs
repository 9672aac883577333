//! `servio probe URL`: one health probe, as servio's own prober runs it (HTTP GET wanting a
//! 2xx or 3xx, or a TCP connect), for container health checks in images with no curl.
//! Exit 0 healthy, 1 not, 2 when the URL is not one servio can probe.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::daemon::health::probe_once;
use crate::error::{CliError, CliResult};
use crate::manifest::{HealthCheck, ProbeKind};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  servio probe http://127.0.0.1:3002/health\n  \
servio probe tcp://db:5432 -t 2s\n\nExit codes: 0 healthy, 1 not healthy, 2 bad URL."
)]
pub struct ProbeArgs {
    /// http://HOST:PORT/PATH (GET, wants 2xx or 3xx) or tcp://HOST:PORT (connects)
    #[arg(value_name = "URL")]
    pub url: String,
    /// How long the probe may take
    #[arg(short, long, value_name = "DURATION", default_value = "1s", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// Print nothing; the exit code tells
    #[arg(short, long)]
    pub quiet: bool,
}

/// What to probe: where, and how (the manifest's health check shape).
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub check: HealthCheck,
}

impl Target {
    /// Parses `http://host:port/path` or `tcp://host:port`; the error says what to write.
    pub fn parse(url: &str) -> Result<Target, String> {
        let bad = |why: &str| {
            format!(
                "`{url}` {why}; write http://HOST:PORT/PATH or tcp://HOST:PORT, like \
http://127.0.0.1:3002/health"
            )
        };
        let (kind, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (ProbeKind::Http, rest)
        } else if let Some(rest) = url.strip_prefix("tcp://") {
            (ProbeKind::Tcp, rest)
        } else {
            return Err(bad("is not an http:// or tcp:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if kind == ProbeKind::Tcp && path != "/" {
            return Err(bad("has a path, which a TCP probe cannot use"));
        }
        if path.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(bad("has spaces or control characters in its path"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once("]:").ok_or_else(|| bad("has no port"))?,
            None => authority
                .rsplit_once(':')
                .ok_or_else(|| bad("has no port"))?,
        };
        if host.is_empty() || host.contains('@') {
            return Err(bad("has no host"));
        }
        let port = match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(bad("has no port from 1 to 65535")),
        };
        Ok(Target {
            host: host.to_string(),
            port,
            check: HealthCheck {
                kind,
                path: path.to_string(),
                ..HealthCheck::default()
            },
        })
    }

    /// One probe, bounded by `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        let check = HealthCheck {
            timeout,
            ..self.check.clone()
        };
        probe_once(&self.host, self.port, &check).await
    }
}

pub fn run(args: ProbeArgs) -> CliResult<ExitCode> {
    let target = Target::parse(&args.url).map_err(CliError::usage)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    match runtime.block_on(target.probe(args.timeout)) {
        Ok(()) => {
            if !args.quiet {
                println!("healthy: {}", args.url);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(_) if args.quiet => Ok(ExitCode::from(crate::error::EXIT_FAILURE)),
        Err(reason) => Err(CliError::failure(format!(
            "{} is not healthy: {reason}",
            args.url
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_probe_targets() {
        let table = [
            (
                "http://127.0.0.1:3002/health",
                "127.0.0.1",
                3002,
                ProbeKind::Http,
                "/health",
            ),
            (
                "http://menu-service:3002/health?deep=1",
                "menu-service",
                3002,
                ProbeKind::Http,
                "/health?deep=1",
            ),
            ("http://localhost:80", "localhost", 80, ProbeKind::Http, "/"),
            ("http://[::1]:8080/h", "::1", 8080, ProbeKind::Http, "/h"),
            ("tcp://db:5432", "db", 5432, ProbeKind::Tcp, "/"),
            ("tcp://db:5432/", "db", 5432, ProbeKind::Tcp, "/"),
        ];
        for (url, host, port, kind, path) in table {
            let target = Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                (
                    target.host.as_str(),
                    target.port,
                    target.check.kind,
                    target.check.path.as_str()
                ),
                (host, port, kind, path),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        let table = [
            ("https://a:1/", "not an http:// or tcp://"),
            ("menu:3002", "not an http:// or tcp://"),
            ("http://menu/health", "no port"),
            ("http://:3002/", "no host"),
            ("http://user@h:1/", "no host"),
            ("http://h:0/", "from 1 to 65535"),
            ("http://h:99999/", "from 1 to 65535"),
            ("tcp://h:1/path", "TCP probe"),
            ("http://h:1/a b", "spaces"),
            ("http://h:1/a\r\nX: y", "control characters"),
        ];
        for (url, want) in table {
            let error = Target::parse(url).expect_err(url);
            assert!(error.contains(want), "{url}: {error}");
            assert!(error.contains("http://HOST:PORT/PATH"), "{error}");
        }
    }
}
