//! state.json: every process the daemon started (pid, process group, start time, port) and
//! the fingerprint of each service's settings, written atomically on each change (mode
//! 0600), so that after the daemon itself was killed a new daemon can adopt the processes
//! and tell whether the manifest changed since, and `servio down` can stop them.
//!
//! The file has to survive the daemon's crash, not the machine's (no process it names
//! outlives the machine), so it is replaced without fsync. Changes that arrive while a write
//! is under way wait for it and share the next write: 200 instances starting at once cost a
//! few writes, not 200, and each change is in the file when the call that made it returns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::planner::Fingerprint;

use crate::paths::write_replacing;
use crate::process;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateFile {
    pub daemon: Option<ProcessRecord>,
    pub admin_port: u16,
    pub gateway_port: Option<u16>,
    pub instances: Vec<InstanceRecord>,
    /// What each running service was started with, to compare with the manifest later.
    #[serde(default)]
    pub fingerprints: BTreeMap<String, Fingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: u32,
    /// Kernel start time (clock ticks since boot): tells a reused pid apart.
    pub start_time: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub service: String,
    pub id: String,
    pub pid: u32,
    /// Process group: equal to `pid`, each instance leads its own group.
    pub pgid: u32,
    pub start_time: u64,
    pub port: u16,
    /// Signal name used to stop it, like "SIGTERM".
    pub stop_signal: String,
    pub stop_timeout_ms: u64,
}

impl InstanceRecord {
    /// True while the recorded leader still runs as the same process (not a reused pid).
    pub fn is_running(&self) -> bool {
        process::is_same_process(self.pid, self.start_time)
    }
}

/// Reads a state file; a missing or unreadable one is an empty state.
pub fn read(path: &Path) -> StateFile {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// The daemon's copy of state.json, persisted on every change.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    state: Mutex<StateFile>,
    /// Held by the one caller writing the file; the others wait their turn (asynchronously,
    /// so a burst of changes parks no runtime thread and shares one write).
    writing: tokio::sync::Mutex<()>,
    /// A change not yet in the file.
    dirty: AtomicBool,
    /// Set once the file is removed: nothing writes it again.
    removed: AtomicBool,
}

impl StateStore {
    pub fn new(path: PathBuf, initial: StateFile) -> Self {
        let store = StateStore {
            path,
            state: Mutex::new(initial),
            writing: tokio::sync::Mutex::new(()),
            dirty: AtomicBool::new(false),
            removed: AtomicBool::new(false),
        };
        store.write();
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateFile> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) {
        let result = serde_json::to_vec(&*self.lock())
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_replacing(&self.path, &bytes, 0o600));
        if let Err(error) = result {
            tracing::error!(path = %self.path.display(), %error, "cannot write state file");
        }
    }

    /// Returns once the change is in the file: written by this caller, or by one that took
    /// it into its write while this one waited its turn (group commit).
    async fn changed(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        let _writer = self.writing.lock().await;
        if !self.dirty.swap(false, Ordering::SeqCst) || self.removed.load(Ordering::SeqCst) {
            return;
        }
        self.write();
    }

    pub async fn set_gateway_port(&self, port: Option<u16>) {
        self.lock().gateway_port = port;
        self.changed().await;
    }

    /// Records a freshly spawned instance (replacing an older record of the same id); returns
    /// once it is in the file.
    pub async fn record(&self, record: InstanceRecord) {
        {
            let mut state = self.lock();
            state.instances.retain(|r| r.id != record.id);
            state.instances.push(record);
        }
        self.changed().await;
    }

    /// Records the settings `service` runs with (`None`: it no longer runs).
    pub async fn set_fingerprint(&self, service: &str, fingerprint: Option<Fingerprint>) {
        let changed = {
            let mut state = self.lock();
            match fingerprint {
                Some(f) => state.fingerprints.insert(service.to_string(), f.clone()) != Some(f),
                None => state.fingerprints.remove(service).is_some(),
            }
        };
        if changed {
            self.changed().await;
        }
    }

    /// Forgets an instance whose process group is gone.
    pub async fn forget(&self, id: &str) {
        let changed = {
            let mut state = self.lock();
            let before = state.instances.len();
            state.instances.retain(|r| r.id != id);
            state.instances.len() != before
        };
        if changed {
            self.changed().await;
        }
    }

    /// Removes the file: the stack is down. Waits for a write under way, and none follows.
    pub async fn remove_file(&self) {
        self.removed.store(true, Ordering::SeqCst);
        let _writer = self.writing.lock().await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The recorded instances whose process still runs (same pid and start time).
pub fn still_running(state: &StateFile) -> Vec<InstanceRecord> {
    state
        .instances
        .iter()
        .filter(|r| r.is_running())
        .cloned()
        .collect()
}

/// Stops every recorded instance whose process still runs, all at once, through the one
/// process-group stopper: stop signal, then SIGKILL after its timeout (or `timeout`, when
/// given). Returns the ids it stopped. Used by `down` when the daemon is gone.
pub async fn stop_leftovers(state: &StateFile, timeout: Option<Duration>) -> Vec<String> {
    let running = still_running(state);
    let mut stops = tokio::task::JoinSet::new();
    for record in &running {
        let signal = process::parse_signal(&record.stop_signal).unwrap_or(Signal::SIGTERM);
        let grace = timeout.unwrap_or(Duration::from_millis(record.stop_timeout_ms));
        let watch = process::ExitWatch::new(record.pid).ok();
        stops.spawn(process::stop_group(
            record.pgid,
            signal,
            grace,
            async move {
                if let Some(watch) = watch {
                    watch.exited().await;
                }
            },
        ));
    }
    stops.join_all().await;
    running.into_iter().map(|r| r.id).collect()
}
