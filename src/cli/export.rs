//! `servio export kubernetes|compose|dockerfile`: the resolved manifest rendered for an
//! orchestrator (see [`crate::export`]). Output goes to stdout, or into files with `-o`;
//! what does not carry over is said on stderr as warnings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::ManifestArg;
use crate::error::{CliError, CliResult};
use crate::export::{self, Document, ExportError, Options};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub target: Target,
}

#[derive(Debug, Subcommand)]
pub enum Target {
    /// Kubernetes objects: per service a Deployment, Service and Secret; an Ingress (or
    /// HTTPRoute) for the gateway's routes
    #[command(
        after_help = "Examples:\n  servio export kubernetes | kubectl apply -f -\n  \
servio export kubernetes -o deploy/ --image registry.example.com/servio:0.1.0 --namespace shop\n  \
kubectl apply -k deploy/"
    )]
    Kubernetes(KubernetesArgs),
    /// A compose file: the services with health checks and depends_on, the gateway as nginx
    #[command(after_help = "Examples:\n  servio export compose -o compose.yaml\n  \
docker compose up -d --wait")]
    Compose(ComposeArgs),
    /// The Dockerfile that builds the servio image (multi-stage, non-root, only the binary)
    Dockerfile(DockerfileArgs),
}

#[derive(Debug, Args)]
pub struct KubernetesArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Write one file per object, a kustomization.yaml and the Dockerfile into DIR
    /// [default: one YAML stream to stdout]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The servio image the containers run
    #[arg(long, value_name = "IMAGE", default_value_t = export::default_image())]
    pub image: String,
    /// Put every object in this namespace (and create it)
    #[arg(long, value_name = "NS", value_parser = parse_namespace)]
    pub namespace: Option<String>,
    /// Route with a Gateway API HTTPRoute instead of an Ingress
    #[arg(long)]
    pub gateway_api: bool,
    /// Write the Secrets' keys with empty values, to fill in (for a repository)
    #[arg(long)]
    pub no_secret_values: bool,
    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Write the compose file here [default: stdout]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The servio image the services run
    #[arg(long, value_name = "IMAGE", default_value_t = export::default_image())]
    pub image: String,
    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct DockerfileArgs {
    /// Write it here [default: stdout]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_namespace(text: &str) -> Result<String, String> {
    if crate::manifest::is_valid_name(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not a namespace name: use 1-63 lowercase letters, digits and '-'"
        ))
    }
}

pub fn run(args: ExportArgs) -> CliResult<ExitCode> {
    match args.target {
        Target::Kubernetes(args) => kubernetes(args),
        Target::Compose(args) => compose(args),
        Target::Dockerfile(args) => {
            let document = export::dockerfile().map_err(export_error)?;
            match &args.output {
                Some(path) => write(path, &document.text)?,
                None => print!("{}", document.text),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn kubernetes(args: KubernetesArgs) -> CliResult<ExitCode> {
    let manifest = args.manifest.load()?;
    let options = Options {
        image: args.image,
        namespace: args.namespace,
        gateway_api: args.gateway_api,
        secret_values: !args.no_secret_values,
    };
    let exe = std::env::current_exe().ok();
    let export = export::kubernetes(&manifest, &options, exe.as_deref()).map_err(export_error)?;
    warn(&export.warnings, args.quiet);
    let Some(dir) = args.output else {
        print!("{}", stream(&export.documents));
        return Ok(ExitCode::SUCCESS);
    };
    let mut files = export.documents.clone();
    files
        .push(export::kustomization(&manifest, &options, &export.documents).map_err(export_error)?);
    files.push(export::dockerfile().map_err(export_error)?);
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    for file in &files {
        write(&dir.join(&file.file), &file.text)?;
    }
    if !args.quiet {
        println!(
            "wrote {} files to {} (apply with `kubectl apply -k {}`)",
            files.len(),
            dir.display(),
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn compose(args: ComposeArgs) -> CliResult<ExitCode> {
    let manifest = args.manifest.load()?;
    let options = Options {
        image: args.image,
        namespace: None,
        gateway_api: false,
        secret_values: true,
    };
    let exe = std::env::current_exe().ok();
    let export = export::compose(&manifest, &options, exe.as_deref()).map_err(export_error)?;
    warn(&export.warnings, args.quiet);
    let text = stream(&export.documents);
    match &args.output {
        Some(path) => {
            write(path, &text)?;
            if !args.quiet {
                println!(
                    "wrote {} (run with `docker compose -f {} up -d --wait`)",
                    path.display(),
                    path.display()
                );
            }
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Documents as one YAML stream.
fn stream(documents: &[Document]) -> String {
    let texts: Vec<&str> = documents.iter().map(|d| d.text.as_str()).collect();
    texts.join("---\n")
}

fn warn(warnings: &[String], quiet: bool) {
    if quiet {
        return;
    }
    let prefix = crate::term::paint(crate::term::stderr_color(), "33;1", "warning:");
    for warning in warnings {
        eprintln!("{prefix} {warning}");
    }
}

fn export_error(error: ExportError) -> CliError {
    match error {
        ExportError::Unsupported(message) => CliError::usage(message),
        ExportError::Template(_) => CliError::failure(error.to_string()),
    }
}

fn write(path: &Path, text: &str) -> CliResult<()> {
    std::fs::write(path, text)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))
}
