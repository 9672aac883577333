//! Names the orchestrators accept: DNS labels for objects, label values, init container
//! names, environment variable names for Secrets. Pure checks with table tests; what cannot
//! be mapped is an [`ExportError`] that says what to rename.

use super::ExportError;

/// `text` as a DNS-1123 label: lowercase letters, digits and '-', 1 to 63 characters, starting
/// and ending with a letter or digit ("My Shop" → "my-shop"; nothing usable → "servio").
pub fn dns_label(text: &str) -> String {
    let mut label = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            label.push(c);
        } else if !label.ends_with('-') {
            label.push('-');
        }
    }
    label.truncate(63);
    let label = label.trim_matches('-').to_string();
    if label.is_empty() {
        "servio".to_string()
    } else {
        label
    }
}

/// A Kubernetes Service name is a DNS-1035 label: it must also start with a letter.
pub fn check_service_name(name: &str) -> Result<(), ExportError> {
    if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(ExportError::Unsupported(format!(
            "service `{name}`: Kubernetes Service names must start with a letter; rename it in \
services.toml (like `svc-{name}`)"
        )))
    }
}

/// Kubernetes only takes `[-._a-zA-Z0-9]+` as Secret keys (and skips other names in
/// `envFrom`), so such a variable would silently go missing.
pub fn check_env_name(service: &str, name: &str) -> Result<(), ExportError> {
    let fine = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if fine {
        Ok(())
    } else {
        Err(ExportError::Unsupported(format!(
            "services.{service}.env: `{name}` cannot be a Kubernetes Secret key; use letters, \
digits, '_', '-' and '.', like RUST_LOG"
        )))
    }
}

/// `text` when it is a valid label value (at most 63 of `[-_.A-Za-z0-9]`, alphanumeric at
/// both ends), else `None`.
pub fn label_value(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let fine = !text.is_empty()
        && text.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    fine.then(|| text.to_string())
}

/// `wait-for-<service>`, or `wait-for-dependency-<n>` (n from 1, the dependency's place in
/// `depends_on`) when that would pass the 63 characters of a container name.
pub fn init_container(service: &str, index: usize) -> String {
    let name = format!("wait-for-{service}");
    if name.len() <= 63 {
        name
    } else {
        format!("wait-for-dependency-{}", index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_become_dns_labels() {
        let long = "a".repeat(70);
        let table = [
            ("servio", "servio"),
            ("My Shop", "my-shop"),
            ("shop_v2.1", "shop-v2-1"),
            ("--x--", "x"),
            ("é", "servio"),
            ("", "servio"),
            (long.as_str(), &long[..63]),
        ];
        for (text, want) in table {
            assert_eq!(dns_label(text), want, "{text:?}");
        }
    }

    #[test]
    fn service_names_must_start_with_a_letter() {
        assert!(check_service_name("menu-service").is_ok());
        let error = check_service_name("2fast").unwrap_err().to_string();
        assert!(
            error.contains("`2fast`") && error.contains("svc-2fast"),
            "{error}"
        );
    }

    #[test]
    fn env_names_must_be_secret_keys() {
        for good in ["RUST_LOG", "a.b-c_1"] {
            assert!(check_env_name("web", good).is_ok(), "{good}");
        }
        for bad in ["", "A B", "É", "x/y"] {
            let error = check_env_name("web", bad).unwrap_err().to_string();
            assert!(error.contains("services.web.env"), "{error}");
        }
    }

    #[test]
    fn label_values() {
        let table = [
            ("1.0.0", Some("1.0.0")),
            ("v2_beta-1", Some("v2_beta-1")),
            ("1.0.0+build", None),
            ("-1", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(label_value(text).as_deref(), want, "{text:?}");
        }
        assert_eq!(label_value(&"1".repeat(64)), None);
    }

    #[test]
    fn init_container_names_fit_a_label() {
        assert_eq!(init_container("menu-service", 0), "wait-for-menu-service");
        let long = "a".repeat(55);
        assert_eq!(init_container(&long, 1), "wait-for-dependency-2");
    }
}
