//! Output pipes that outlive the daemon. Each instance writes its stdout and stderr into a
//! named pipe under `.servio/pipes/`, which the child holds open for reading and writing:
//! while the child lives the pipe always has a reader, so a daemon that dies (SIGKILL, OOM)
//! never leaves its services writing into a closed pipe (EPIPE, SIGPIPE). The daemon reads
//! the pipe; a new daemon adopting the instance opens it again and captures from then on,
//! starting with what the pipe buffered (up to 64 KiB) while no daemon ran.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::sys::stat::Mode;
use tokio::net::unix::pipe;

/// Creates the pipe at `path` (replacing a stale file) and opens both ends: the reader the
/// daemon captures from, and the read-write end the child gets as stdout or stderr.
pub fn create(path: &Path) -> io::Result<(pipe::Receiver, File)> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(io::Error::from)?;
    let reader = pipe::OpenOptions::new().open_receiver(path)?;
    let child_end = File::options().read(true).write(true).open(path)?;
    Ok((reader, child_end))
}

/// Opens the reading end of an existing pipe, to capture an adopted instance's output.
pub fn reopen(path: &Path) -> io::Result<pipe::Receiver> {
    pipe::OpenOptions::new().open_receiver(path)
}

/// Removes an instance's pipe once nothing of it runs.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}
