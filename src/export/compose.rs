//! The compose file: per service its image, command, environment, ports, health check
//! (`servio probe`: the image has no curl), `depends_on` with `service_healthy`, restart
//! policy, replicas, stop signal and grace, and a data volume; the gateway as an nginx
//! service whose configuration (inline, from templates/compose/nginx.conf) holds the routes.

use minijinja::{Value, context};

use super::plan::{IMAGE_BINARY, IMAGE_WORKDIR, Stack};
use super::render::Templates;
use super::{Document, ExportError};

/// The gateway's image: nginx, pinned to a stable release line.
pub const NGINX_IMAGE: &str = "docker.io/library/nginx:1.28-alpine";

pub(super) fn document(templates: &Templates, stack: &Stack) -> Result<Document, ExportError> {
    let nginx_conf = match &stack.gateway {
        Some(gateway) => {
            // Longest prefix first: nginx tries regex locations in the order written.
            let mut routes = gateway.routes.clone();
            routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
            templates.render(
                "compose/nginx.conf",
                context! { g => Value::from_serialize(gateway), routes => Value::from_serialize(&routes) },
            )?
        }
        None => String::new(),
    };
    let text = templates.render(
        "compose/compose.yaml",
        context! {
            stack => Value::from_serialize(stack),
            binary => IMAGE_BINARY,
            workdir => IMAGE_WORKDIR,
            nginx_image => NGINX_IMAGE,
            nginx_conf,
        },
    )?;
    Ok(Document {
        file: "compose.yaml".to_string(),
        text,
    })
}
