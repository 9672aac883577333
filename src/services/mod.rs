//! The Servio platform services, run as `servio serve menu|inventory|order`.
//!
//! # Layout
//!
//! - [`settings`]: the environment a service gets from the supervisor (`PORT`, ...).
//! - [`db`]: each service's own SQLite database: WAL, migrations, a writer thread that
//!   commits queued writes together, and a small pool of readers.
//! - [`http`]: the JSON error type and the extractors that turn bad input into 4xx.
//! - [`params`]: query parameters and keyset pagination.
//! - [`common`]: `/health`, `/openapi.json` and the fallbacks every service shares.
//! - [`openapi`]: helpers for each service's OpenAPI 3.1 document.
//! - [`menu`], [`inventory`], [`order`]: the three services, each `app(state) -> Router`
//!   with its store (SQL) beside its handlers.
//!
//! Shutdown: SIGTERM or SIGINT stops accepting, lets in-flight requests finish (bounded by
//! [`DRAIN_TIMEOUT`]), stops background tasks, then drops the database handles, which
//! closes the connections (the last close checkpoints the WAL).

pub mod common;
pub mod db;
pub mod http;
pub mod inventory;
pub mod menu;
pub mod openapi;
pub mod order;
pub mod params;
pub mod settings;
pub mod validate;

use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio_util::sync::CancellationToken;

use self::common::Identity;
use self::db::{Db, Durability};
use self::settings::Settings;

/// How long in-flight requests get to finish after SIGTERM before the process exits anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Which platform service to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Menu,
    Inventory,
    Order,
}

/// Runs the service on `$PORT` until SIGTERM/SIGINT.
pub async fn serve(kind: Kind) -> anyhow::Result<()> {
    init_tracing();
    let settings = Settings::from_env(kind)?;
    let identity = Identity {
        service: settings.service.clone(),
        instance: settings.instance.clone(),
        version: settings.version.clone(),
    };
    let path = settings.db_path.clone();
    // Orders and reservations are money and stock: a 2xx must survive power loss. The
    // menu is re-entered by its owners, so a process crash is what it must survive.
    let (migrations, durability) = match kind {
        Kind::Menu => (menu::MIGRATIONS, Durability::ProcessCrash),
        Kind::Inventory => (inventory::MIGRATIONS, Durability::PowerLoss),
        Kind::Order => (order::MIGRATIONS, Durability::PowerLoss),
    };
    let db = tokio::task::spawn_blocking(move || Db::open(&path, migrations, durability))
        .await
        .context("opening the database panicked")??;
    let shutdown = CancellationToken::new();
    let tasks = tokio_util::task::TaskTracker::new();
    let app = match kind {
        Kind::Menu => menu::app(db.clone(), identity),
        Kind::Inventory => inventory::app(db.clone(), identity),
        Kind::Order => {
            let state = order::State::from_env(db.clone())?;
            tasks.spawn(order::repair::run(state.clone(), shutdown.child_token()));
            order::app(state, identity)
        }
    };
    // Small request/response exchanges: no Nagle delay between a request's writes.
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?
        .tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
    tracing::info!(
        service = %settings.service,
        listen = %settings.listen,
        database = %db.path().display(),
        "serving"
    );
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        stop.cancel();
    });
    let graceful = shutdown.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        graceful.cancelled().await;
        tracing::info!("shutting down: no new connections, draining in-flight requests");
    });
    let drained = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = server => result.context("the HTTP server failed")?,
        () = drained => tracing::warn!("in-flight requests did not finish in time; exiting"),
    }
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    drop(db);
    tracing::info!("stopped; database closed");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            // Without signal handlers, Ctrl-C via tokio's portable path is all we have.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs to stderr (the supervisor captures it), filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
