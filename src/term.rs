//! Terminal decisions in one place: colour only on a TTY and never with NO_COLOR.

use std::io::IsTerminal;

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Colour on stdout.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && !no_color()
}

/// Colour on stderr.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && !no_color()
}

/// Live progress bars: stderr is a TTY and NO_COLOR is unset.
pub fn progress_bars() -> bool {
    stderr_color()
}

/// Wraps `text` in an ANSI colour (`code` like "31" for red) when `enabled`.
pub fn paint(enabled: bool, code: &str, text: &str) -> String {
    if enabled {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}
