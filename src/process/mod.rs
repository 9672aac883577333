//! Processes servio owns: process groups, signals, and start times, so that a pid recorded
//! earlier is only ever signalled while it still names the same process.

pub mod exit;
pub mod limits;
pub mod ports;
pub mod sockets;
pub mod stop;

pub use exit::ExitWatch;
pub use stop::{StopOutcome, stop_group};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// /proc/PID/stat, read with one open and one read (no size probe: the kernel hands the whole
/// line to a read with room for it).
fn read_stat(pid: u32) -> Option<String> {
    reread(&std::fs::File::open(format!("/proc/{pid}/stat")).ok()?)
}

/// The kernel's start time of `pid` (clock ticks since boot, field 22 of /proc/PID/stat).
/// `None` when the process does not exist.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = read_stat(pid)?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state); start time is field 22 → index 19 here.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// When `pid` started, as wall-clock time: now minus its age, the age being the system's
/// uptime (/proc/uptime) minus the process's start time since boot, both on the boot clock
/// (the boot time in /proc/stat is whole seconds and drifts from the wall clock). `None`
/// when it is gone.
pub fn started_at(pid: u32) -> Option<std::time::SystemTime> {
    let ticks = start_time(pid)?;
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let uptime: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let started = ticks as f64 / ticks_per_second()? as f64;
    let age = std::time::Duration::from_secs_f64((uptime - started).max(0.0));
    std::time::SystemTime::now().checked_sub(age)
}

/// True when `pid` still runs and is the process that had `started` as its start time.
/// Zombies count as gone.
pub fn is_same_process(pid: u32, started: u64) -> bool {
    if state_char(pid) == Some('Z') {
        return false;
    }
    start_time(pid) == Some(started)
}

fn state_char(pid: u32) -> Option<char> {
    let stat = read_stat(pid)?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The process group of `pid` (field 5 of /proc/PID/stat); `None` for a gone or zombie one.
pub fn group_of(pid: u32) -> Option<u32> {
    let stat = read_stat(pid)?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    // After the state: ppid, then pgrp.
    let pgrp = fields.nth(1)?.parse().ok()?;
    (state != "Z").then_some(pgrp)
}

/// True while any process is left in process group `pgid` (zombies excluded).
///
/// One `killpg(pgid, 0)` answers the usual case (the group is gone) without reading /proc;
/// only a group that still has members, maybe only zombies nobody has reaped yet, is
/// looked up process by process.
pub fn group_alive(pgid: u32) -> bool {
    if pgid == 0 || killpg(Pid::from_raw(pgid as i32), None) == Err(Errno::ESRCH) {
        return false;
    }
    group_members(pgid).next().is_some()
}

/// The live processes of group `pgid`.
pub fn group_members(pgid: u32) -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(move |pid| group_of(*pid) == Some(pgid))
}

/// Sends `signal` to every process in group `pgid`. Returns false when the group is gone
/// (ESRCH), which callers treat as "already stopped".
pub fn signal_group(pgid: u32, signal: Signal) -> std::io::Result<bool> {
    match killpg(Pid::from_raw(pgid as i32), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(errno) => Err(std::io::Error::from(errno)),
    }
}

/// Describes how a process ended, for status and error messages.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exited with code {code}")
    } else if let Some(signal) = status.signal() {
        match Signal::try_from(signal) {
            Ok(sig) => format!("killed by {}", sig.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        }
    } else {
        "exited".to_string()
    }
}

/// What a process has used: CPU time (user + system) and resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub cpu_ms: u64,
    pub rss_bytes: u64,
}

/// CPU time and resident memory of processes, for `servio status`: each process's
/// /proc/PID/stat stays open between calls and is read again from offset 0 (which makes the
/// kernel write it anew), so 200 instances cost 200 reads, not 200 path walks, opens, reads
/// and closes. A descriptor names its process, not its number: once the process is gone a
/// read fails, and a new process with the same pid gets a descriptor of its own.
#[derive(Debug, Default)]
pub struct UsageReader {
    open: std::sync::Mutex<std::collections::HashMap<u32, std::fs::File>>,
}

impl UsageReader {
    /// The usage of each of `pids` (`None` for a gone one); descriptors of processes not
    /// among `pids` are closed.
    pub fn sample(&self, pids: &[u32]) -> Vec<Option<Usage>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: std::collections::HashSet<u32> = pids.iter().copied().collect();
        open.retain(|pid, _| wanted.contains(pid));
        pids.iter()
            .map(|&pid| {
                let stat = match open.get(&pid).and_then(reread) {
                    Some(stat) => stat,
                    None => {
                        open.remove(&pid);
                        let file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
                        let stat = reread(&file)?;
                        open.insert(pid, file);
                        stat
                    }
                };
                parse_usage(&stat)
            })
            .collect()
    }
}

/// The whole of a /proc file, read from offset 0 (which makes the kernel write it anew):
/// one read when it fits the buffer, as /proc/PID/stat does; `None` once its process is gone.
fn reread(file: &std::fs::File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mut buffer = [0u8; 1024];
    let mut text = Vec::new();
    loop {
        let n = file.read_at(&mut buffer, text.len() as u64).ok()?;
        text.extend_from_slice(&buffer[..n]);
        if n < buffer.len() {
            break;
        }
    }
    if text.is_empty() {
        return None;
    }
    String::from_utf8(text).ok()
}

/// CPU time and resident set from a /proc/PID/stat line.
fn parse_usage(stat: &str) -> Option<Usage> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    // After the command: state is field 3; utime and stime are fields 14 and 15, the
    // resident set in pages field 24.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let resident_pages: u64 = fields.nth(8)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(Usage {
        cpu_ms: (utime + stime) * 1000 / ticks_per_second()?,
        rss_bytes: resident_pages * page,
    })
}

/// The kernel's clock ticks per second, the unit of /proc's CPU and start times.
fn ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|t| *t > 0)
}

/// Parses "SIGTERM", "TERM" or "15" into a signal.
pub fn parse_signal(text: &str) -> Option<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id();
        let first = start_time(me).expect("own start time");
        assert_eq!(start_time(me), Some(first));
        assert!(is_same_process(me, first));
        assert!(!is_same_process(me, first + 1));
    }

    #[test]
    fn own_start_is_in_the_recent_past() {
        let started = started_at(std::process::id()).expect("own start");
        let age = std::time::SystemTime::now()
            .duration_since(started)
            .expect("started before now");
        assert!(age < std::time::Duration::from_secs(3600), "{age:?}");
        assert!(started_at(u32::MAX).is_none());
    }

    #[test]
    fn own_usage_is_read_from_proc() {
        let reader = UsageReader::default();
        let [own, none] = reader.sample(&[std::process::id(), u32::MAX])[..] else {
            panic!("one usage per pid")
        };
        let own = own.expect("own usage");
        assert!(own.rss_bytes > 1 << 20, "{own:?}");
        // The resident set read from stat is the one /proc/PID/status shows as VmRSS.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let vm_rss_kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap();
        assert!(
            (own.rss_bytes / 1024).abs_diff(vm_rss_kb) < 4096,
            "{own:?} against VmRSS {vm_rss_kb} kB"
        );
        assert!(none.is_none());
    }

    #[test]
    fn a_kept_descriptor_reads_fresh_figures_and_fails_once_its_process_is_gone() {
        let reader = UsageReader::default();
        let own = std::process::id();
        let before = reader.sample(&[own])[0].expect("own usage").cpu_ms;
        // Spin until the kernel's CPU time (10 ms ticks) moves, read through the same
        // descriptor each time.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while reader.sample(&[own])[0].expect("own usage").cpu_ms == before {
            assert!(std::time::Instant::now() < deadline, "CPU time never moved");
        }
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(reader.sample(&[child.id()])[0].is_some());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(reader.sample(&[child.id()])[0].is_none());
    }

    #[test]
    fn parses_signal_names() {
        assert_eq!(parse_signal("SIGTERM"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("int"), Some(Signal::SIGINT));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("SIGNOPE"), None);
    }
}
