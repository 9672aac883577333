//! state.json: every process the daemon started (pid, process group, start time, port),
//! written atomically on each change, so that `servio down` or a new daemon can stop them
//! even after the daemon itself was killed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::paths::write_atomic;
use crate::process;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateFile {
    pub daemon: Option<ProcessRecord>,
    pub admin_port: u16,
    pub gateway_port: Option<u16>,
    pub instances: Vec<InstanceRecord>,
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
}

impl StateStore {
    pub fn new(path: PathBuf, initial: StateFile) -> Self {
        let store = StateStore {
            path,
            state: Mutex::new(initial),
        };
        store.persist(&store.lock());
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateFile> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, state: &StateFile) {
        let result = serde_json::to_vec_pretty(state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomic(&self.path, &bytes));
        if let Err(error) = result {
            tracing::error!(path = %self.path.display(), %error, "cannot write state file");
        }
    }

    pub fn set_gateway_port(&self, port: Option<u16>) {
        let mut state = self.lock();
        state.gateway_port = port;
        self.persist(&state);
    }

    /// Records a freshly spawned instance (replacing an older record of the same id).
    pub fn record(&self, record: InstanceRecord) {
        let mut state = self.lock();
        state.instances.retain(|r| r.id != record.id);
        state.instances.push(record);
        self.persist(&state);
    }

    /// Forgets an instance whose process group is gone.
    pub fn forget(&self, id: &str) {
        let mut state = self.lock();
        let before = state.instances.len();
        state.instances.retain(|r| r.id != id);
        if state.instances.len() != before {
            self.persist(&state);
        }
    }

    /// Removes the file: the stack is down.
    pub fn remove_file(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Stops every recorded instance whose process still runs (verified by start time):
/// stop signal to its group, then SIGKILL after its timeout (or `timeout`, when given).
/// Returns the ids it stopped. Used by `down` when the daemon is gone, and by a new daemon
/// cleaning up after a crashed one.
pub fn stop_leftovers(state: &StateFile, timeout: Option<Duration>) -> Vec<String> {
    let running: Vec<&InstanceRecord> = state.instances.iter().filter(|r| r.is_running()).collect();
    for record in &running {
        let signal = process::parse_signal(&record.stop_signal).unwrap_or(Signal::SIGTERM);
        let _ = process::signal_group(record.pgid, signal);
    }
    for record in &running {
        let grace = timeout.unwrap_or(Duration::from_millis(record.stop_timeout_ms));
        let deadline = Instant::now() + grace;
        while process::group_alive(record.pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if process::group_alive(record.pgid) {
            let _ = process::signal_group(record.pgid, Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while process::group_alive(record.pgid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    running.into_iter().map(|r| r.id.clone()).collect()
}
