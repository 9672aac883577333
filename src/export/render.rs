//! The templates in templates/, compiled into the binary, and the one minijinja environment
//! that renders them. `.yaml` templates auto-escape as JSON: every value lands as a JSON
//! string or number, which YAML reads as the same scalar, so no value (an environment
//! value with a newline, a `: `, a `#`) can change the document's shape. Compose values
//! also pass through `nointerp`, which doubles `$` against compose's interpolation.

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::ExportError;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "kubernetes/_macros.yaml",
        include_str!("../../templates/kubernetes/_macros.yaml"),
    ),
    (
        "kubernetes/namespace.yaml",
        include_str!("../../templates/kubernetes/namespace.yaml"),
    ),
    (
        "kubernetes/secret.yaml",
        include_str!("../../templates/kubernetes/secret.yaml"),
    ),
    (
        "kubernetes/deployment.yaml",
        include_str!("../../templates/kubernetes/deployment.yaml"),
    ),
    (
        "kubernetes/service.yaml",
        include_str!("../../templates/kubernetes/service.yaml"),
    ),
    (
        "kubernetes/endpointslice.yaml",
        include_str!("../../templates/kubernetes/endpointslice.yaml"),
    ),
    (
        "kubernetes/ingress.yaml",
        include_str!("../../templates/kubernetes/ingress.yaml"),
    ),
    (
        "kubernetes/httproute.yaml",
        include_str!("../../templates/kubernetes/httproute.yaml"),
    ),
    (
        "kubernetes/kustomization.yaml",
        include_str!("../../templates/kubernetes/kustomization.yaml"),
    ),
    (
        "compose/compose.yaml",
        include_str!("../../templates/compose/compose.yaml"),
    ),
    (
        "compose/nginx.conf",
        include_str!("../../templates/compose/nginx.conf"),
    ),
    ("Dockerfile", include_str!("../../templates/Dockerfile")),
];

/// The environment holding every template.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Result<Templates, ExportError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".yaml") {
                AutoEscape::Json
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(true);
        env.add_filter("nointerp", nointerp);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| ExportError::Template(format!("{name}: {e:#}")))?;
        }
        Ok(Templates { env })
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: Value) -> Result<String, ExportError> {
        self.env
            .get_template(name)
            .and_then(|template| template.render(context))
            .map_err(|e| ExportError::Template(format!("{name}: {e:#}")))
    }
}

/// `$` → `$$`: compose reads `$$` as a literal `$` instead of interpolating a variable.
fn nointerp(value: String) -> String {
    value.replace('$', "$$")
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_template_compiles() {
        Templates::new().expect("templates");
    }

    #[test]
    fn yaml_values_cannot_change_the_document() {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.add_filter("nointerp", nointerp);
        env.add_template("t.yaml", "key: {{ v }}\nother: {{ v | nointerp }}\n")
            .unwrap();
        let hostile = "a: b\n# c\n- d ${HOME} \"q\"";
        let text = env
            .get_template("t.yaml")
            .unwrap()
            .render(context! { v => hostile })
            .unwrap();
        let parsed: std::collections::BTreeMap<String, String> =
            yaml_serde::from_str(&text).expect("one mapping");
        assert_eq!(parsed["key"], hostile);
        assert_eq!(parsed["other"], hostile.replace('$', "$$"));
        assert_eq!(parsed.len(), 2);
    }
}
