//! The CLI's end of the control socket: connect, send one typed request, read one typed
//! response. Blocking I/O: a status round trip needs no async runtime.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::daemon::state::ProcessRecord;
use crate::error::{CliError, CliResult};
use crate::paths::StatePaths;
use crate::protocol::{Envelope, PROTOCOL_VERSION, Request, Response};

pub struct DaemonConnection {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl DaemonConnection {
    /// Connects to the stack's daemon; `None` when no daemon listens, or when the daemon
    /// state.json names is gone (one killed a moment ago can still accept on its socket,
    /// then drop the connection).
    pub fn connect(paths: &StatePaths) -> Option<Self> {
        let stream = UnixStream::connect(paths.control_socket()).ok()?;
        let recorded = crate::daemon::state::read(&paths.state_file()).daemon;
        if recorded.is_some_and(|d| !crate::process::is_same_process(d.pid, d.start_time)) {
            return None;
        }
        let reader = BufReader::new(stream.try_clone().ok()?);
        Some(DaemonConnection {
            writer: stream,
            reader,
        })
    }

    /// Like [`Self::connect`], but also proves the daemon answers: a daemon SIGKILLed a moment
    /// ago is alive by its pid and still accepts on its socket until the kernel has torn it
    /// down, then resets the connection. Such a daemon is waited out (at most 5 s) and
    /// `None` returned, so `up` can start a new one that adopts its instances.
    pub fn connect_answering(paths: &StatePaths) -> Option<Self> {
        let mut connection = Self::connect(paths)?;
        if connection
            .request(Request::Status, Some(Duration::from_secs(10)))
            .is_ok()
        {
            return Some(connection);
        }
        let recorded = crate::daemon::state::read(&paths.state_file()).daemon;
        wait_for_daemon_exit(paths, recorded, Duration::from_secs(5));
        Self::connect(paths)
    }

    /// Sends `request` and waits for the answer (at most `timeout`, when given).
    pub fn request(&mut self, request: Request, timeout: Option<Duration>) -> CliResult<Response> {
        self.send(request)?;
        self.answer(timeout)
    }

    /// Sends `request` without waiting for an answer.
    pub fn send(&mut self, request: Request) -> CliResult<()> {
        let mut line = serde_json::to_vec(&Envelope {
            protocol: PROTOCOL_VERSION,
            request,
        })
        .map_err(|e| CliError::failure(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line).map_err(lost)
    }

    /// Reads the next answer (at most `timeout`, when given); an error answer becomes the
    /// matching [`CliError`].
    pub fn answer(&mut self, timeout: Option<Duration>) -> CliResult<Response> {
        self.reader
            .get_ref()
            .set_read_timeout(timeout)
            .map_err(lost)?;
        let mut answer = String::new();
        let read = self.reader.read_line(&mut answer).map_err(lost)?;
        if read == 0 {
            return Err(lost(std::io::ErrorKind::UnexpectedEof.into()));
        }
        match serde_json::from_str(&answer) {
            Ok(Response::Error { message, usage }) => Err(if usage {
                CliError::Usage(message)
            } else {
                CliError::failure(message)
            }),
            Ok(response) => Ok(response),
            Err(e) => Err(CliError::failure(format!(
                "unreadable answer from the daemon: {e}"
            ))),
        }
    }
}

/// Waits (at most `limit`) until the daemon `daemon` records is gone, or, with no record,
/// until its control socket is removed.
pub fn wait_for_daemon_exit(paths: &StatePaths, daemon: Option<ProcessRecord>, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    let running = || match &daemon {
        Some(d) => crate::process::is_same_process(d.pid, d.start_time),
        None => paths.control_socket().exists(),
    };
    while running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lost(e: std::io::Error) -> CliError {
    CliError::failure(format!(
        "lost the connection to the servio daemon ({e}); see .servio/daemon.log"
    ))
}

/// Connects to the stack's daemon, or fails saying what to do: start the stack, or, when
/// a crashed daemon left instances running, adopt them with `up` or stop them with `down`.
pub fn require(paths: &StatePaths) -> CliResult<DaemonConnection> {
    if let Some(connection) = DaemonConnection::connect(paths) {
        return Ok(connection);
    }
    let orphans =
        crate::daemon::state::still_running(&crate::daemon::state::read(&paths.state_file()));
    if orphans.is_empty() {
        Err(CliError::failure(not_running(paths)))
    } else {
        Err(CliError::failure(daemon_gone(orphans.len())))
    }
}

/// What to say when the daemon died and left `count` instances running.
pub fn daemon_gone(count: usize) -> String {
    format!(
        "the servio daemon is gone (killed or crashed) and {count} instance(s) it started still run; \
`servio up` adopts them, `servio down` stops them"
    )
}

/// The message for commands that need a running stack.
pub fn not_running(paths: &StatePaths) -> String {
    let root = paths.root().parent().unwrap_or(paths.root());
    format!(
        "servio is not running in {}. Start the stack with `servio up`.",
        root.display()
    )
}
