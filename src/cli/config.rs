//! `servio config`: validates the manifest and prints it resolved (environment redacted).

use std::process::ExitCode;

use clap::Args;

use super::ManifestArg;
use crate::error::{CliError, CliResult};
use crate::manifest::view::ResolvedView;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Print JSON instead of TOML
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ConfigArgs) -> CliResult<ExitCode> {
    let manifest = args.manifest.load()?;
    let view = ResolvedView::new(&manifest);
    if args.json {
        let text = serde_json::to_string_pretty(&view)
            .map_err(|e| CliError::failure(format!("cannot render the manifest as JSON: {e}")))?;
        println!("{text}");
    } else {
        let text = toml::to_string(&view)
            .map_err(|e| CliError::failure(format!("cannot render the manifest as TOML: {e}")))?;
        println!(
            "# {} resolved: defaults filled in,",
            manifest.path.display()
        );
        println!("# environment values redacted (they may hold secrets).\n");
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}
