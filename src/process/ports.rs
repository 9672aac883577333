//! TCP ports of the machine: picking a free one for a service, whether one is in use, and who
//! listens on it (named in "port in use" errors).

/// Whether something already listens on 127.0.0.1:`port` (or the wildcard address).
pub fn port_in_use(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
        || std::net::TcpListener::bind(("0.0.0.0", port)).is_err()
}

/// A port that is free on 127.0.0.1 and `taken` does not exclude; 0 when none was found in a
/// few tries. Ports come from below the kernel's ephemeral range when there is room there:
/// a port from inside it can be handed to some process's outgoing connection in the moment
/// between this pick and the service's own bind, and the service then fails to start.
pub fn pick_free_port(taken: &dyn Fn(u16) -> bool) -> u16 {
    let free = |port: u16| port != 0 && !taken(port) && !port_in_use(port);
    if let Some(below) = below_ephemeral_range() {
        let mut rng = fastrand::Rng::new();
        for _ in 0..32 {
            let port = rng.u16(below.clone());
            if free(port) {
                return port;
            }
        }
    }
    for _ in 0..32 {
        let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", 0)) else {
            continue;
        };
        if let Ok(addr) = listener.local_addr() {
            if !taken(addr.port()) {
                return addr.port();
            }
        }
    }
    0
}

/// Ports no outgoing connection is given: from 20000 up to where the kernel's ephemeral
/// range (`net.ipv4.ip_local_port_range`) starts, when that leaves room.
fn below_ephemeral_range() -> Option<std::ops::Range<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let start: u16 = text.split_whitespace().next()?.parse().ok()?;
    (start > 21_000).then_some(20_000..start)
}

/// The process listening on `port`, as "pid 1234 (python3)", when /proc tells.
/// Sockets of other users' processes are invisible without privileges: then `None`.
pub fn port_holder(port: u16) -> Option<String> {
    let inodes = listening_inodes_on(port)?;
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let pid = pids.into_iter().find(|pid| holds_socket(*pid, &wanted))?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let comm = comm.trim();
    Some(if comm.is_empty() {
        format!("pid {pid}")
    } else {
        format!("pid {pid} ({comm})")
    })
}

/// Who listens on a port, as seen from a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// A process of the group.
    Ours,
    /// Someone else: another stack's service that took a port picked at the same moment.
    Others,
    /// Nobody (any more).
    Nobody,
    /// /proc does not tell.
    Unknown,
}

/// Who listens on `port`, from the point of view of process group `pgid`.
pub fn listener_of(pgid: u32, port: u16) -> Listener {
    let Some(inodes) = listening_inodes_on(port) else {
        return Listener::Unknown;
    };
    if inodes.is_empty() {
        return Listener::Nobody;
    }
    let wanted: Vec<String> = inodes
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    let leader_holds = super::group_of(pgid) == Some(pgid) && holds_socket(pgid, &wanted);
    if leader_holds || super::group_members(pgid).any(|pid| holds_socket(pid, &wanted)) {
        Listener::Ours
    } else {
        Listener::Others
    }
}

/// Inodes of the sockets listening on `port`: from the kernel's sock_diag, or where that is
/// refused, from /proc's tables; `None` when neither tells.
fn listening_inodes_on(port: u16) -> Option<Vec<u64>> {
    if let Ok(inodes) = super::sockets::listening_inodes(port) {
        return Some(inodes);
    }
    let tables: Vec<String> = LISTEN_TABLES
        .iter()
        .filter_map(|table| listening_section(table))
        .collect();
    (!tables.is_empty()).then(|| {
        tables
            .iter()
            .flat_map(|text| listening_inodes(text, port))
            .collect()
    })
}

/// The kernel's tables of TCP sockets, IPv4 and IPv6.
const LISTEN_TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// The header and the LISTEN lines of a /proc/net/tcp{,6} table. The kernel writes the
/// listening sockets first, then every other one (established, TIME_WAIT: tens of thousands
/// on a busy machine, 15 ms to generate); reading stops at the first line past the
/// listening ones, so the rest is never generated.
fn listening_section(path: &str) -> Option<String> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).ok()?;
    let mut section = String::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.ok()?;
        if i > 0 && line.split_whitespace().nth(3) != Some("0A") {
            break;
        }
        section.push_str(&line);
        section.push('\n');
    }
    Some(section)
}

/// Inodes of sockets in LISTEN state (0A) on `port`, from a /proc/net/tcp{,6} table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let listening = *fields.get(3)? == "0A";
            let matches = u16::from_str_radix(local_port, 16).ok()? == port;
            let inode: u64 = fields.get(9)?.parse().ok()?;
            (listening && matches && inode != 0).then_some(inode)
        })
        .collect()
}

fn holds_socket(pid: u32, wanted: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| target.to_str().map(|t| wanted.iter().any(|w| w == t)))
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_sockets_from_proc_tables() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:0BB8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1\n\
   2: garbage\n";
        assert_eq!(listening_inodes(table, 3000), [4242]);
        assert!(listening_inodes(table, 3001).is_empty());
    }

    #[test]
    fn picked_ports_are_free_and_not_excluded() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = taken.local_addr().expect("addr").port();
        for _ in 0..20 {
            let port = pick_free_port(&|p| p == taken);
            assert_ne!(port, 0);
            assert_ne!(port, taken);
            assert!(!port_in_use(port), "{port} is in use");
            if let Some(below) = below_ephemeral_range() {
                assert!(
                    below.contains(&port),
                    "{port} is not below the ephemeral range"
                );
            }
        }
    }

    #[test]
    fn tells_whose_group_listens_on_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let own = crate::process::group_of(std::process::id()).expect("own group");
        assert_eq!(listener_of(own, port), Listener::Ours);
        assert_eq!(listener_of(own + 1, port), Listener::Others);
        drop(listener);
        assert_eq!(listener_of(own, port), Listener::Nobody);
    }

    #[test]
    fn names_the_process_holding_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(port_in_use(port));
        let holder = port_holder(port).expect("our own socket is visible in /proc");
        assert!(
            holder.starts_with(&format!("pid {} (", std::process::id())),
            "{holder}"
        );
    }
}
