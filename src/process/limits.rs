//! The process settings servio changes for itself and gives back to the processes it starts.
//!
//! - The open-file limit. Every gateway connection, upstream connection, log pipe and probe is
//!   a file descriptor, and the usual soft limit (1024) is far below `gateway.max_connections`:
//!   the daemon raises its soft limit to the hard limit at start, as nginx and Go do. The
//!   processes it starts get the soft limit it was given back (as Go does too): programs using
//!   select(2) break on descriptors past 1024.
//! - Transparent huge pages. mimalloc asks for them (madvise) on its 2 MiB-aligned segments,
//!   so each thread's first small allocation faulted in a whole 2 MiB page: the daemon held
//!   12 MiB of anonymous memory for about 1.8 MiB in use. Every servio process declines them
//!   at start; the processes the daemon starts get the setting it was given back.

use std::sync::OnceLock;

use nix::sys::prctl;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The soft and hard limit the daemon started with, once it raised its own.
static INHERITED: OnceLock<(u64, u64)> = OnceLock::new();

/// Whether huge pages were already declined when this process started, once it declined them.
static INHERITED_THP_DISABLE: OnceLock<bool> = OnceLock::new();

/// Declines transparent huge pages for this process (`PR_SET_THP_DISABLE`, checked at each page
/// fault, so it holds for memory mapped before the call too). Call first thing in `main`.
pub fn decline_huge_pages() {
    if let Ok(was) = prctl::get_thp_disable()
        && prctl::set_thp_disable(true).is_ok()
    {
        let _ = INHERITED_THP_DISABLE.set(was);
    }
}

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

/// The settings this process changed for itself, as it was given them: what a process it
/// starts gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inherited {
    open_files: Option<(u64, u64)>,
    thp_disable: Option<bool>,
}

impl Inherited {
    /// What [`raise_open_files`] and [`decline_huge_pages`] changed, as it was before.
    pub fn get() -> Self {
        Inherited {
            open_files: INHERITED.get().copied(),
            thp_disable: INHERITED_THP_DISABLE.get().copied(),
        }
    }

    fn changed_nothing(self) -> bool {
        self.open_files.is_none() && self.thp_disable.is_none()
    }

    /// Puts the settings back. Runs between fork and exec: plain system calls only.
    pub fn restore(self) -> std::io::Result<()> {
        if let Some((soft, hard)) = self.open_files {
            setrlimit(Resource::RLIMIT_NOFILE, soft, hard)?;
        }
        if let Some(flag) = self.thp_disable {
            prctl::set_thp_disable(flag)?;
        }
        Ok(())
    }
}

/// Makes `command`'s process start with the settings this process was given ([`Inherited`]).
/// For a `tokio::process::Command`, pass `as_std_mut()`.
pub fn restore_for_child(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let inherited = Inherited::get();
    if inherited.changed_nothing() {
        return;
    }
    // SAFETY: `restore` makes only async-signal-safe system calls and touches only the values
    // it owns: nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(move || inherited.restore());
    }
}
