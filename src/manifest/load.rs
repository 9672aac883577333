//! Finding and reading the manifest: `locate` (explicit path, or the nearest services.toml
//! upwards), then `load` = TOML syntax → raw sections (each deserialized on its own, so one
//! bad table does not hide errors in the others) → `resolve` → cross-checks.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostics::{Diagnostics, key_at};
use super::raw::{RawEntry, RawManifest};
use super::{Manifest, ManifestError, ManifestErrors, checks, resolve};

/// The file name looked for in the current folder and its parents.
pub const FILE_NAME: &str = "services.toml";

const SECTIONS: &str = "`project`, `gateway`, `admin`, `logs`, `services`";

pub(super) fn locate(explicit: Option<&Path>) -> Result<PathBuf, ManifestErrors> {
    if let Some(path) = explicit {
        let path = if path.is_dir() {
            path.join(FILE_NAME)
        } else {
            path.to_path_buf()
        };
        if !path.is_file() {
            return Err(unpositioned(
                &path,
                "no such manifest file".to_string(),
                "check the path, or run `servio init` to write a services.toml",
            ));
        }
        return Ok(absolute(&path));
    }
    let cwd = std::env::current_dir().map_err(|e| {
        unpositioned(
            Path::new(FILE_NAME),
            format!("cannot read the current folder: {e}"),
            "run servio from an existing folder, or pass -f PATH",
        )
    })?;
    cwd.ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            unpositioned(
                Path::new(FILE_NAME),
                "no services.toml here or in any parent folder".to_string(),
                "run `servio init` to write one, or pass -f PATH",
            )
        })
}

pub(super) fn load(path: &Path) -> Result<Manifest, ManifestErrors> {
    let path = absolute(path);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        unpositioned(
            &path,
            format!("cannot read the manifest: {e}"),
            "check that the file exists, is readable and is UTF-8 text",
        )
    })?;
    from_text(&path, &text)
}

/// Loads manifest `text` as if read from the absolute `path`.
pub(super) fn from_text(path: &Path, text: &str) -> Result<Manifest, ManifestErrors> {
    let mut diag = Diagnostics::new(path, text);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            let key = key_at(root.get_ref(), span.start);
            diag.at(
                &span,
                &key,
                error.message().to_string(),
                "fix the TOML syntax here",
            );
        }
        // Checking the meaning of a half-parsed file would only add noise.
        return Err(diag.into_errors());
    }
    let raw = sections(root.get_ref(), &mut diag);
    let manifest = resolve::resolve(&raw, path, &mut diag);
    checks::cross_check(&raw, &manifest, &mut diag);
    diag.finish()?;
    Ok(manifest)
}

/// Splits the document into its sections and deserializes each one on its own.
fn sections(root: &DeTable<'_>, diag: &mut Diagnostics) -> RawManifest {
    let mut raw = RawManifest::default();
    for (key, value) in root.iter() {
        match key.get_ref().as_ref() {
            "project" => raw.project = section(root, value, diag),
            "gateway" => {
                raw.gateway_span = Some(value.span());
                raw.gateway = section(root, value, diag);
            }
            "admin" => raw.admin = section(root, value, diag),
            "logs" => raw.logs = section(root, value, diag),
            "services" => raw.services = services(root, value, diag),
            other => diag.at(
                &key.span(),
                other,
                format!("unknown field `{other}`, expected one of {SECTIONS}"),
                "remove it, or put it under one of the expected sections",
            ),
        }
    }
    raw
}

fn services(
    root: &DeTable<'_>,
    value: &Spanned<DeValue<'_>>,
    diag: &mut Diagnostics,
) -> Vec<RawEntry> {
    let DeValue::Table(table) = value.get_ref() else {
        diag.at(
            &value.span(),
            "services",
            format!(
                "invalid type: {}, expected a table",
                value.get_ref().type_str()
            ),
            "write one `[services.NAME]` table per service",
        );
        return Vec::new();
    };
    let mut entries: Vec<RawEntry> = table
        .iter()
        .map(|(name, body)| RawEntry {
            name: name.get_ref().to_string(),
            name_span: name.span(),
            service: section(root, body, diag),
        })
        .collect();
    entries.sort_by_key(|entry| entry.name_span.start);
    entries
}

/// Deserializes one table; a failure becomes an error at toml's span, with a fix.
fn section<T: for<'de> Deserialize<'de>>(
    root: &DeTable<'_>,
    value: &Spanned<DeValue<'_>>,
    diag: &mut Diagnostics,
) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let span = error.span().unwrap_or_else(|| value.span());
            let key = key_at(root, span.start);
            let fix = fix_for(error.message(), &key);
            diag.at(&span, &key, error.message().to_string(), &fix);
            None
        }
    }
}

/// What to do about a serde error, from its message and the key it is about.
fn fix_for(message: &str, key: &str) -> String {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    if message.starts_with("unknown field") {
        "remove it, or rename it to one of the expected keys".to_string()
    } else if message.starts_with("unknown variant") {
        "use one of the expected values".to_string()
    } else if let Some(field) = message.strip_prefix("missing field ") {
        format!("add {} = ...", field.trim_matches('`'))
    } else if super::resolve::DURATION_KEYS.contains(&leaf) {
        super::resolve::DURATION_FIX.to_string()
    } else if leaf == "port" {
        "write a port number from 1 to 65535 (0 picks a free one)".to_string()
    } else {
        "write a value of the expected type".to_string()
    }
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn unpositioned(file: &Path, message: String, fix: &str) -> ManifestErrors {
    ManifestErrors(vec![ManifestError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        key: String::new(),
        message,
        fix: fix.to_string(),
    }])
}
