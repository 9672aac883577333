//! `servio export`: the resolved manifest rendered, through the templates in templates/, into
//! what an orchestrator runs: Kubernetes objects, a compose file, and the Dockerfile of the
//! image both run. The exported services find each other through DNS
//! (`SERVIO_ENDPOINTS_*`, read by [`crate::client`]), with no servio daemon.
//!
//! # Layout
//!
//! - [`plan`]: manifest → [`plan::Stack`]: every mapping decided once, pure.
//! - [`routes`]: gateway routes → Ingress paths and Gateway API rewrites, pure.
//! - [`names`]: names and keys the orchestrators accept.
//! - `render`: the compiled-in templates and the minijinja environment.
//! - `kubernetes`, `compose`: one document per object / the compose file.

mod compose;
mod kubernetes;
pub mod names;
pub mod plan;
mod render;
pub mod routes;

use std::path::Path;

pub use plan::{Options, Stack};

use crate::manifest::Manifest;

/// Why an export cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The manifest holds something the target cannot take: the message says what to change.
    #[error("{0}")]
    Unsupported(String),
    /// A template did not render (a bug in servio, not in the manifest).
    #[error("rendering template {0}")]
    Template(String),
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Its file name in an output folder, like `menu-service-deployment.yaml`.
    pub file: String,
    pub text: String,
}

/// What an export produced, and what did not carry over (for stderr).
#[derive(Debug, Clone)]
pub struct Export {
    pub documents: Vec<Document>,
    pub warnings: Vec<String>,
}

/// Kubernetes objects, one document each (the kustomization.yaml is [`kustomization`]).
/// `servio_exe` is the binary the manifest's `servio` commands resolved to.
pub fn kubernetes(
    manifest: &Manifest,
    options: &Options,
    servio_exe: Option<&Path>,
) -> Result<Export, ExportError> {
    let stack = plan::plan(manifest, options, servio_exe)?;
    let templates = render::Templates::new()?;
    let documents = kubernetes::documents(&templates, &stack, options.gateway_api)?;
    let mut warnings = stack.warnings;
    for w in stack
        .workloads
        .iter()
        .filter(|w| w.stop_signal != "SIGTERM")
    {
        warnings.push(format!(
            "{}: Kubernetes stops containers with SIGTERM, not {} (noted as the annotation \
servio-stop-signal)",
            w.name, w.stop_signal
        ));
    }
    Ok(Export {
        documents,
        warnings,
    })
}

/// The kustomization.yaml listing `documents`.
pub fn kustomization(
    manifest: &Manifest,
    options: &Options,
    documents: &[Document],
) -> Result<Document, ExportError> {
    let templates = render::Templates::new()?;
    kubernetes::kustomization(&templates, manifest, options, documents)
}

/// The compose file.
pub fn compose(
    manifest: &Manifest,
    options: &Options,
    servio_exe: Option<&Path>,
) -> Result<Export, ExportError> {
    let stack = plan::plan(manifest, options, servio_exe)?;
    let templates = render::Templates::new()?;
    let document = compose::document(&templates, &stack)?;
    Ok(Export {
        documents: vec![document],
        warnings: stack.warnings,
    })
}

/// The Dockerfile that builds the servio image.
pub fn dockerfile() -> Result<Document, ExportError> {
    let templates = render::Templates::new()?;
    let text = templates.render(
        "Dockerfile",
        minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            rust_version => RUST_VERSION,
            binary => plan::IMAGE_BINARY,
            workdir => plan::IMAGE_WORKDIR,
            uid => plan::IMAGE_UID,
        },
    )?;
    Ok(Document {
        file: "Dockerfile".to_string(),
        text,
    })
}

/// The Rust release the image is built with (the one servio is tested with here).
pub const RUST_VERSION: &str = "1.95";

/// The image `--image` defaults to: what the Dockerfile's own build example tags.
pub fn default_image() -> String {
    format!("servio:{}", env!("CARGO_PKG_VERSION"))
}
