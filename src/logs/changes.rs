//! [`LogChanges`]: wakes `servio logs -f` as soon as a followed log file changes.
//!
//! The kernel tells (inotify, through `notify`) when a file in a followed log's folder is
//! written, created or renamed; a change to one of the followed files ends
//! [`LogChanges::wait`] at once. Events can be missed (a folder that does not exist yet, a
//! full kernel queue, a file system without notifications), so the wait also ends after a
//! fallback interval: short when nothing is watched, long when the watch is in place.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

/// How long a wait lasts without any notification, when the kernel watch is in place.
const WATCHED_FALLBACK: Duration = Duration::from_secs(1);
/// How long a wait lasts when some followed folder could not be watched.
const UNWATCHED_INTERVAL: Duration = Duration::from_millis(100);

/// Notifications about a set of log files; see the module doc.
pub struct LogChanges {
    /// `None` when the kernel refused a watcher: then every wait is the short interval.
    watcher: Option<notify::RecommendedWatcher>,
    /// Folders not watched yet (they may not exist yet): retried on every wait.
    unwatched: Vec<PathBuf>,
    inbox: Receiver<()>,
}

impl LogChanges {
    /// Watches the folders of `paths` for changes to these files.
    pub fn watch(paths: &[PathBuf]) -> Self {
        let names: BTreeSet<OsString> = paths
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect();
        // One pending wake is enough: the follower reads everything new when it wakes.
        let (wake, inbox) = mpsc::sync_channel(1);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let relevant = match event {
                Ok(event) => !event.kind.is_access() && touches(&event.paths, &names),
                // A lost event (queue overflow) may have been ours.
                Err(_) => true,
            };
            if relevant {
                let _ = wake.try_send(());
            }
        })
        .ok();
        let folders: BTreeSet<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
        let mut changes = LogChanges {
            watcher,
            unwatched: folders.into_iter().map(Path::to_path_buf).collect(),
            inbox,
        };
        changes.watch_missing();
        changes
    }

    /// Returns when a followed file changed, or after the fallback interval.
    pub fn wait(&mut self) {
        let interval = self.interval();
        match self.inbox.recv_timeout(interval) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            // No watcher: the channel is closed, so wait out the interval.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(interval),
        }
        self.watch_missing();
    }

    fn interval(&self) -> Duration {
        if self.watcher.is_some() && self.unwatched.is_empty() {
            WATCHED_FALLBACK
        } else {
            UNWATCHED_INTERVAL
        }
    }

    fn watch_missing(&mut self) {
        if let Some(watcher) = &mut self.watcher {
            self.unwatched
                .retain(|folder| watcher.watch(folder, RecursiveMode::NonRecursive).is_err());
        }
    }
}

/// Whether an event on `paths` is about one of the files named `names`.
fn touches(paths: &[PathBuf], names: &BTreeSet<OsString>) -> bool {
    paths
        .iter()
        .any(|p| p.file_name().is_some_and(|n| names.contains(n)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Instant;

    use super::*;

    #[test]
    fn touches_only_the_followed_names() {
        let names: BTreeSet<OsString> = ["web.log".into()].into();
        let cases = [
            (vec!["/p/.servio/logs/web.log"], true),
            (vec!["/p/.servio/logs/api.log"], false),
            (
                vec!["/p/.servio/logs/web.log.1", "/p/.servio/logs/web.log"],
                true,
            ),
            (vec!["/p/.servio/logs/web.log.1"], false),
            (vec![], false),
        ];
        for (paths, expected) in cases {
            let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
            assert_eq!(touches(&paths, &names), expected, "{paths:?}");
        }
    }

    #[test]
    fn a_write_to_a_followed_file_wakes_the_follower() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/web.log");
        let mut changes = LogChanges::watch(std::slice::from_ref(&path));
        assert_eq!(changes.interval(), UNWATCHED_INTERVAL, "no folder yet");
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        changes.wait();
        assert_eq!(
            changes.interval(),
            WATCHED_FALLBACK,
            "the new folder is watched"
        );

        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"line\n")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while changes.inbox.try_recv().is_err() {
            assert!(Instant::now() < deadline, "no notification of the write");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
