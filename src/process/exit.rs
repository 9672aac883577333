//! Waiting for a process that is not our child to end, without polling: a pidfd
//! (`pidfd_open(2)`, Linux 5.3+) becomes readable when the process exits. Used for
//! instances a daemon adopted from a crashed predecessor, whose exit status it cannot reap.

use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A handle that resolves when the process it names has ended.
#[derive(Debug)]
pub struct ExitWatch {
    fd: AsyncFd<OwnedFd>,
}

impl ExitWatch {
    /// Watches `pid`; an error when it does not exist (already gone) or pidfds are missing.
    pub fn new(pid: u32) -> std::io::Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        // SAFETY: the AsyncFd owns the descriptor from here on; nothing replaces or closes it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(ExitWatch { fd })
    }

    /// Resolves once the process has exited (it may still be a zombie of its parent).
    pub async fn exited(&self) {
        // A pidfd stays readable once the process is gone: one readiness is the answer.
        let _ = self.fd.readable().await;
    }
}
