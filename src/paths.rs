//! Where a running stack keeps its files: `.servio/` beside the manifest.

use std::io;
use std::path::{Path, PathBuf};

/// The state folder of one stack and the files in it.
#[derive(Debug, Clone)]
pub struct StatePaths {
    root: PathBuf,
}

impl StatePaths {
    /// The state folder for the manifest living in `project_dir`.
    pub fn for_project(project_dir: &Path) -> Self {
        StatePaths {
            root: project_dir.join(".servio"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn control_socket(&self) -> PathBuf {
        self.root.join("control.sock")
    }
    pub fn daemon_pid(&self) -> PathBuf {
        self.root.join("daemon.pid")
    }
    pub fn daemon_lock(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }
    /// The admin API's bearer token for writes (0600), written by the daemon at start.
    pub fn admin_token(&self) -> PathBuf {
        self.root.join("admin.token")
    }
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn service_log(&self, service: &str) -> PathBuf {
        self.logs_dir().join(format!("{service}.log"))
    }
    /// The named pipe instance `id` writes its stdout (`out`) or stderr (`err`) into.
    pub fn output_pipe(&self, id: &str, stream: &str) -> PathBuf {
        self.root.join("pipes").join(format!("{id}.{stream}"))
    }
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Creates the folder tree. The root is 0700: it holds the control socket and logs.
    pub fn create(&self) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)?;
        std::fs::create_dir_all(self.logs_dir())?;
        std::fs::create_dir_all(self.data_dir())?;
        Ok(())
    }
}

/// Writes `contents` to `path` atomically with permissions `mode`: a temporary file beside
/// it, fsync, then rename. A reader (or a crash at any moment) sees the old file or the new
/// one, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    replace_file(path, contents, mode, true)
}

/// [`write_atomic`] without the fsync: a reader, or this process's crash at any moment, sees
/// the old file or the new one; a crash of the machine may lose the last writes. For files
/// that describe processes, which do not outlive the machine either.
pub fn write_replacing(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    replace_file(path, contents, mode, false)
}

fn replace_file(path: &Path, contents: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        if sync {
            file.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)
}
