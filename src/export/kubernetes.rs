//! The Kubernetes documents: per service a Secret (its `env`), a Service and a Deployment;
//! per external service a selector-less Service and its EndpointSlices; the gateway's routes
//! as an Ingress or, with `--gateway-api`, an HTTPRoute; a Namespace when one is named.

use minijinja::{Value, context};

use super::plan::{IMAGE_BINARY, IMAGE_UID, IMAGE_WORKDIR, Stack};
use super::render::Templates;
use super::{Document, ExportError, Options};
use crate::manifest::Manifest;

pub(super) fn documents(
    templates: &Templates,
    stack: &Stack,
    gateway_api: bool,
) -> Result<Vec<Document>, ExportError> {
    let stack_value = Value::from_serialize(stack);
    let render = |template: &str, file: String, extra: Value| -> Result<Document, ExportError> {
        let context = context! {
            stack => stack_value.clone(),
            binary => IMAGE_BINARY,
            workdir => IMAGE_WORKDIR,
            uid => IMAGE_UID,
            ..extra
        };
        Ok(Document {
            file,
            text: templates.render(template, context)?,
        })
    };
    let mut documents = Vec::new();
    if stack.namespace.is_some() {
        documents.push(render(
            "kubernetes/namespace.yaml",
            "namespace.yaml".to_string(),
            context! {},
        )?);
    }
    for w in &stack.workloads {
        if w.secret_name.is_some() {
            documents.push(render(
                "kubernetes/secret.yaml",
                format!("{}-secret.yaml", w.name),
                context! { w => Value::from_serialize(w) },
            )?);
        }
    }
    for w in &stack.workloads {
        documents.push(render(
            "kubernetes/service.yaml",
            format!("{}-service.yaml", w.name),
            context! { s => Value::from_serialize(w), external => false },
        )?);
    }
    for e in &stack.externals {
        documents.push(render(
            "kubernetes/service.yaml",
            format!("{}-service.yaml", e.name),
            context! { s => Value::from_serialize(e), external => true },
        )?);
        for slice in &e.slices {
            documents.push(render(
                "kubernetes/endpointslice.yaml",
                format!("{}-endpointslice.yaml", slice.name),
                context! { e => Value::from_serialize(e), slice => Value::from_serialize(slice) },
            )?);
        }
    }
    for w in &stack.workloads {
        documents.push(render(
            "kubernetes/deployment.yaml",
            format!("{}-deployment.yaml", w.name),
            context! { w => Value::from_serialize(w) },
        )?);
    }
    if let Some(gateway) = &stack.gateway
        && !gateway.routes.is_empty()
    {
        let name = format!("{}-gateway", stack.project);
        let (template, file) = if gateway_api {
            ("kubernetes/httproute.yaml", "gateway-httproute.yaml")
        } else {
            ("kubernetes/ingress.yaml", "gateway-ingress.yaml")
        };
        documents.push(render(template, file.to_string(), context! { name })?);
    }
    Ok(documents)
}

pub(super) fn kustomization(
    templates: &Templates,
    manifest: &Manifest,
    options: &Options,
    documents: &[Document],
) -> Result<Document, ExportError> {
    let files: Vec<&str> = documents.iter().map(|d| d.file.as_str()).collect();
    let text = templates.render(
        "kubernetes/kustomization.yaml",
        context! {
            stack => context! {
                namespace => options.namespace.clone(),
                project => super::names::dns_label(&manifest.project),
            },
            files,
        },
    )?;
    Ok(Document {
        file: "kustomization.yaml".to_string(),
        text,
    })
}
