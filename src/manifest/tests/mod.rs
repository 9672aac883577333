//! Unit tests of loading: `rules` has one table row per validation rule (exact line:col,
//! key, message); `loading` covers defaults, launch resolution, start order and port checks.

mod hostile;
mod loading;
mod rules;

use super::*;

/// Writes `text` as services.toml in a fresh folder and loads it.
fn load_text(text: &str) -> (tempfile::TempDir, Result<Manifest, ManifestErrors>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("services.toml");
    std::fs::write(&path, text).expect("write manifest");
    let result = load(&path);
    (dir, result)
}

fn errors_of(text: &str) -> Vec<ManifestError> {
    match load_text(text).1 {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors.0,
    }
}

fn manifest_of(text: &str) -> (tempfile::TempDir, Manifest) {
    match load_text(text) {
        (dir, Ok(manifest)) => (dir, manifest),
        (_, Err(errors)) => panic!("expected a valid manifest:\n{errors}"),
    }
}

/// The smallest valid service.
const A: &str = "[services.a]\ncommand = [\"true\"]\n";
