//! `servio init`: writes a starter services.toml from templates/ (never overwrites).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use crate::error::{CliError, CliResult};
use crate::manifest::FILE_NAME;

/// The starter manifest, compiled in so an installed binary needs no source tree.
pub const TEMPLATE: &str = include_str!("../../templates/services.toml");

#[derive(Debug, Args)]
pub struct InitArgs {}

pub fn run(_args: InitArgs) -> CliResult<ExitCode> {
    let path = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("cannot read the current folder: {e}")))?
        .join(FILE_NAME);
    // create_new: refuse atomically, even if another process writes the file meanwhile.
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::failure(format!(
                "{FILE_NAME} already exists; servio init never overwrites it \
(check it with `servio config`, or move it away first)"
            )));
        }
        Err(e) => {
            return Err(CliError::failure(format!(
                "cannot create {}: {e}",
                path.display()
            )));
        }
    };
    file.write_all(TEMPLATE.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    println!(
        "  menu-service :3002, inventory-service :3003, order-service :3001 (after both),\n  \
gateway :3000 (/api/orders, /api/menu-items, /api/inventory), admin API 127.0.0.1:2999"
    );
    println!("next: run `servio up`, then `servio status`");
    Ok(ExitCode::SUCCESS)
}
