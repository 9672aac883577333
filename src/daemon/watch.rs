//! Watch mode: a change under a service's watched paths restarts it with a rolling restart
//! (the gateway keeps answering), once per burst of changes. The kernel reports changes
//! (inotify, through the notify crate: no polling); a burst ends 300 ms after its last
//! change. `.git`, `target`, `node_modules` and `.servio` are never watched. The restart is
//! an ordinary plan run by the executor, and the service's log names the file that
//! triggered it.
//!
//! Which services are watched and which paths match is pure ([`WatchTarget::wants`]); the
//! rest is I/O at the edges.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::supervisor::Supervisor;
use crate::logs::{ServiceLog, Stream};
use crate::manifest::{Launch, Manifest};
use crate::protocol::Intent;

/// Quiet time that ends a burst of changes.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Folders never watched, wherever they are.
pub const IGNORED: [&str; 4] = [".git", "target", "node_modules", ".servio"];

/// What one service watches.
#[derive(Debug, Clone)]
pub struct WatchTarget {
    pub service: String,
    /// Globs are relative to this folder (the service's cwd).
    pub root: PathBuf,
    globs: GlobSet,
}

impl WatchTarget {
    /// The services of `manifest` to watch: those with `watch` globs, and with `all` (from
    /// `up --watch`) every other service it runs too, on everything under its cwd.
    pub fn from_manifest(manifest: &Manifest, all: bool) -> Vec<WatchTarget> {
        manifest
            .services
            .values()
            .filter(|s| matches!(s.launch, Launch::Command(_)))
            .filter_map(|service| {
                let patterns = match (&service.watch[..], all) {
                    ([], false) => return None,
                    ([], true) => vec!["**".to_string()],
                    (some, _) => some.to_vec(),
                };
                WatchTarget::new(&service.name, &service.cwd, &patterns)
            })
            .collect()
    }

    /// A target for `service` watching `patterns` under `root`; `None` without a valid glob.
    pub fn new(service: &str, root: &Path, patterns: &[String]) -> Option<Self> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            builder.add(Glob::new(pattern).ok()?);
        }
        Some(WatchTarget {
            service: service.to_string(),
            root: root.to_path_buf(),
            globs: builder.build().ok()?,
        })
    }

    /// Whether a change at `path` concerns this service: under its root, in no ignored
    /// folder, and matching one of its globs.
    pub fn wants(&self, path: &Path) -> bool {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return false;
        };
        let ignored = relative
            .components()
            .any(|part| IGNORED.iter().any(|name| part.as_os_str() == *name));
        !ignored && self.globs.is_match(relative)
    }
}

/// The running watch: dropping it stops the kernel watches and the debounce task.
#[derive(Debug)]
pub struct Watching {
    services: Vec<String>,
    stop: CancellationToken,
    _watcher: notify::RecommendedWatcher,
}

impl Watching {
    /// The services being watched.
    pub fn services(&self) -> &[String] {
        &self.services
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts watching `targets`; each burst of changes restarts its service through
/// `supervisor`. `None` when there is nothing to watch or the kernel refuses.
pub fn start(
    targets: Vec<WatchTarget>,
    supervisor: Weak<Supervisor>,
    logs: &BTreeMap<String, ServiceLog>,
) -> Option<Watching> {
    if targets.is_empty() {
        return None;
    }
    let (changes, inbox) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !event.kind.is_access() {
                for path in event.paths {
                    let _ = changes.send(path);
                }
            }
        }
    })
    .map_err(|error| tracing::error!(%error, "cannot watch files"))
    .ok()?;
    let mut roots: Vec<&Path> = targets.iter().map(|t| t.root.as_path()).collect();
    roots.sort();
    roots.dedup();
    for root in roots {
        if let Err(error) = watcher.watch(root, RecursiveMode::Recursive) {
            tracing::error!(%error, root = %root.display(), "cannot watch");
        }
    }
    let stop = CancellationToken::new();
    let services = targets.iter().map(|t| t.service.clone()).collect();
    let logs = logs.clone();
    tokio::spawn(debounce(targets, inbox, supervisor, logs, stop.clone()));
    Some(Watching {
        services,
        stop,
        _watcher: watcher,
    })
}

/// Collects changes per service and restarts each once its burst has been quiet for
/// [`DEBOUNCE`].
async fn debounce(
    targets: Vec<WatchTarget>,
    mut inbox: mpsc::UnboundedReceiver<PathBuf>,
    supervisor: Weak<Supervisor>,
    logs: BTreeMap<String, ServiceLog>,
    stop: CancellationToken,
) {
    // Per service: when its burst ends, and the first file that changed in it.
    let mut pending: BTreeMap<String, (Instant, PathBuf)> = BTreeMap::new();
    loop {
        let next = pending.values().map(|(at, _)| *at).min();
        let quiet = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            path = inbox.recv() => {
                let Some(path) = path else { return };
                for target in targets.iter().filter(|t| t.wants(&path)) {
                    let ends = Instant::now() + DEBOUNCE;
                    pending
                        .entry(target.service.clone())
                        .and_modify(|(at, _)| *at = ends)
                        .or_insert((ends, path.clone()));
                }
            }
            _ = quiet => {
                let now = Instant::now();
                let due: Vec<String> = pending
                    .iter()
                    .filter(|(_, (at, _))| *at <= now)
                    .map(|(name, _)| name.clone())
                    .collect();
                for service in due {
                    let Some((_, path)) = pending.remove(&service) else { continue };
                    let Some(supervisor) = supervisor.upgrade() else { return };
                    let root = targets.iter().find(|t| t.service == service).map(|t| t.root.clone());
                    let shown = root
                        .and_then(|r| path.strip_prefix(r).ok().map(Path::to_path_buf))
                        .unwrap_or(path);
                    let line = format!("servio: {} changed: restarting {service}", shown.display());
                    tracing::info!(%service, file = %shown.display(), "watched file changed: restarting");
                    if let Some(log) = logs.get(&service) {
                        log.append("servio", Stream::Err, line.as_bytes());
                    }
                    tokio::spawn(restart(supervisor, service));
                }
            }
        }
    }
}

async fn restart(supervisor: Arc<Supervisor>, service: String) {
    let intent = Intent::Restart {
        services: vec![service.clone()],
    };
    let timeout = Duration::from_secs(60);
    match supervisor.apply(&intent, timeout, async |_, _| {}).await {
        Ok(results) => {
            for result in results.iter().filter(|r| r.error.is_some()) {
                tracing::warn!(service = %result.service, error = ?result.error, "watch restart failed");
            }
        }
        Err(error) => tracing::warn!(%service, %error, "watch restart not planned"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_wants_matching_files_under_its_root_outside_ignored_folders() {
        let target = WatchTarget::new(
            "web",
            Path::new("/p/web"),
            &["src/**/*.rs".to_string(), "Cargo.toml".to_string()],
        )
        .expect("valid globs");
        #[rustfmt::skip]
        let table = [
            ("/p/web/src/main.rs", true),
            ("/p/web/src/a/b/c.rs", true),
            ("/p/web/Cargo.toml", true),
            ("/p/web/src/notes.txt", false),
            ("/p/web/README.md", false),
            ("/p/other/src/main.rs", false),
            ("/p/web/target/debug/src/x.rs", false),
            ("/p/web/src/.git/x.rs", false),
            ("/p/web/src/node_modules/m.rs", false),
            ("/p/web/.servio/logs/web.log", false),
        ];
        for (path, wanted) in table {
            assert_eq!(target.wants(Path::new(path)), wanted, "{path}");
        }
        let everything = WatchTarget::new("web", Path::new("/p"), &["**".to_string()]).unwrap();
        assert!(everything.wants(Path::new("/p/web/anything")));
        assert!(!everything.wants(Path::new("/p/target/x")));
        assert!(WatchTarget::new("web", Path::new("/p"), &["a[".to_string()]).is_none());
    }
}
