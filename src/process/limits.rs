//! The daemon's open-file limit. Every gateway connection, upstream connection, log pipe and
//! probe is a file descriptor, and the usual soft limit (1024) is far below
//! `gateway.max_connections`: the daemon raises its soft limit to the hard limit at start,
//! as nginx and Go do. The processes it starts get the soft limit it was given back (as Go
//! does too): programs using select(2) break on descriptors past 1024.

use std::sync::OnceLock;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The soft and hard limit the daemon started with, once it raised its own.
static INHERITED: OnceLock<(u64, u64)> = OnceLock::new();

/// What raising the limit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub from: u64,
    pub to: u64,
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; children started through
/// [`restore_for_child`] get the earlier soft limit back.
pub fn raise_open_files() -> nix::Result<Raised> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        let _ = INHERITED.set((soft, hard));
    }
    Ok(Raised {
        from: soft,
        to: soft.max(hard),
    })
}

/// Makes `command`'s process start with the soft open-file limit this process was given,
/// when [`raise_open_files`] raised it; otherwise changes nothing.
pub fn restore_for_child(command: &mut tokio::process::Command) {
    let Some(&(soft, hard)) = INHERITED.get() else {
        return;
    };
    // SAFETY: setrlimit is a plain system call (async-signal-safe) and the closure touches
    // only the two numbers it owns: nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            setrlimit(Resource::RLIMIT_NOFILE, soft, hard).map_err(std::io::Error::from)
        });
    }
}
