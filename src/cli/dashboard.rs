//! `servio dashboard [--open]`: prints the address of the web dashboard the daemon serves on
//! its admin port, with the admin token in the URL fragment (`#token=…`): browsers never
//! send a fragment to a server, so the token reaches no request line and no log; the page
//! keeps it for the tab and removes it from the address bar. `--open` also hands the URL to
//! the desktop's browser (`xdg-open`, or `open` on macOS) when there is one.

use std::process::{ExitCode, Stdio};

use clap::Args;

use super::ManifestArg;
use crate::error::{CliError, CliResult};
use crate::protocol::{Request, Response};

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Also open it in the browser (xdg-open)
    #[arg(long)]
    pub open: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
}

/// The dashboard's URL for the admin API at `admin_url` and its token.
pub fn dashboard_url(admin_url: &str, token: &str) -> String {
    format!("{}/#token={token}", admin_url.trim_end_matches('/'))
}

pub fn run(args: DashboardArgs) -> CliResult<ExitCode> {
    let (manifest, mut connection) = args.manifest.connect()?;
    let status = match connection.request(Request::Status, None)? {
        Response::Status(status) => status,
        other => return Err(CliError::failure(format!("unexpected answer: {other:?}"))),
    };
    let paths = crate::paths::StatePaths::for_project(&manifest.root);
    let token = std::fs::read_to_string(paths.admin_token()).map_err(|e| {
        CliError::failure(format!(
            "cannot read {}: {e}",
            paths.admin_token().display()
        ))
    })?;
    let url = dashboard_url(&status.admin_url, token.trim());
    println!("{url}");
    if args.open {
        match open_browser(&url) {
            Ok(opener) => eprintln!("opened with {opener}"),
            Err(why) => eprintln!("cannot open a browser ({why}); open the address above"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the desktop's URL opener without waiting for the browser; its name.
fn open_browser(url: &str) -> Result<&'static str, String> {
    let openers: &[&'static str] = if cfg!(target_os = "macos") {
        &["open"]
    } else {
        &["xdg-open"]
    };
    for opener in openers {
        let mut command = std::process::Command::new(opener);
        command
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::process::limits::restore_for_child(&mut command);
        let spawned = command.spawn();
        if spawned.is_ok() {
            return Ok(opener);
        }
    }
    Err(format!("no {} found", openers.join(" or ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_in_the_fragment() {
        assert_eq!(
            dashboard_url("http://127.0.0.1:2999", "abc"),
            "http://127.0.0.1:2999/#token=abc"
        );
        assert_eq!(
            dashboard_url("http://127.0.0.1:2999/", "abc"),
            "http://127.0.0.1:2999/#token=abc"
        );
    }
}
