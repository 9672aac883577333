//! Where errors point: byte offsets → 1-based line:column, the dotted key written at an
//! offset, and the collector every check reports into (so one run shows every problem).

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::{ManifestError, ManifestErrors};

/// Collects errors against one manifest file.
#[derive(Debug)]
pub(super) struct Diagnostics {
    file: PathBuf,
    text: String,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    errors: Vec<ManifestError>,
}

impl Diagnostics {
    pub fn new(file: &Path, text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Diagnostics {
            file: file.to_path_buf(),
            text: text.to_string(),
            line_starts,
            errors: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past the end clamp.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        // Count characters, not bytes: skip UTF-8 continuation bytes.
        let column = self.text.as_bytes()[start..offset]
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count();
        (line.max(1), column + 1)
    }

    /// An error at `span` (its start is what counts).
    pub fn at(&mut self, span: &Range<usize>, key: &str, message: String, fix: &str) {
        let (line, column) = self.position(span.start);
        self.push(line, column, key, message, fix);
    }

    /// An error at an optional span: without one it is reported without a position.
    pub fn at_opt(&mut self, span: Option<&Range<usize>>, key: &str, message: String, fix: &str) {
        match span {
            Some(span) => self.at(span, key, message, fix),
            None => self.push(0, 0, key, message, fix),
        }
    }

    fn push(&mut self, line: usize, column: usize, key: &str, message: String, fix: &str) {
        self.errors.push(ManifestError {
            file: self.file.clone(),
            line,
            column,
            key: key.to_string(),
            message,
            fix: fix.to_string(),
        });
    }

    /// `Err` with every error when there is one.
    pub fn finish(self) -> Result<(), ManifestErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.into_errors())
        }
    }

    /// Every error, in file order.
    pub fn into_errors(mut self) -> ManifestErrors {
        self.errors.sort_by_key(|e| (e.line, e.column));
        ManifestErrors(self.errors)
    }
}

/// The dotted key whose name or value covers `offset` most narrowly, e.g.
/// `services.order-service.health_check.interval` or `gateway.routes[1].service`.
pub(super) fn key_at(root: &DeTable<'_>, offset: usize) -> String {
    let mut best: Option<(usize, String)> = None;
    walk_table(root, "", offset, &mut best);
    best.map(|(_, key)| key).unwrap_or_default()
}

fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn consider(best: &mut Option<(usize, String)>, span: &Range<usize>, offset: usize, key: &str) {
    if covers(span, offset) && best.as_ref().is_none_or(|(len, _)| span.len() <= *len) {
        *best = Some((span.len(), key.to_string()));
    }
}

fn walk_table(
    table: &DeTable<'_>,
    prefix: &str,
    offset: usize,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        consider(best, &key.span(), offset, &path);
        consider(best, &value.span(), offset, &path);
        walk_value(value.get_ref(), &path, offset, best);
    }
}

fn walk_value(value: &DeValue<'_>, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
    match value {
        DeValue::Table(table) => walk_table(table, path, offset, best),
        DeValue::Array(array) => {
            for (i, item) in array.iter().enumerate() {
                if let DeValue::Table(table) = item.get_ref() {
                    let path = format!("{path}[{i}]");
                    consider(best, &item.span(), offset, &path);
                    walk_table(table, &path, offset, best);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbé = 2\n\nc = 3";
        let diag = Diagnostics::new(Path::new("x.toml"), text);
        let cases = [
            (0, (1, 1)),
            (4, (1, 5)),
            (6, (2, 1)),
            (10, (2, 4)),
            (13, (2, 7)),
            (14, (3, 1)),
        ];
        for (offset, expected) in cases {
            assert_eq!(diag.position(offset), expected, "offset {offset}");
        }
        assert_eq!(diag.position(15), (4, 1));
        assert_eq!(diag.position(999), (4, 6));
    }

    #[test]
    fn finds_the_narrowest_key() {
        let text = "[services.a]\nport = 3\nhealth_check = { interval = 5 }\n\
                    [[gateway.routes]]\nprefix = \"/a\"\n[[gateway.routes]]\nservice = 1\n";
        let root = DeTable::parse(text).expect("valid toml");
        let find = |needle: &str| key_at(root.get_ref(), text.find(needle).expect("in text"));
        assert_eq!(find("port"), "services.a.port");
        assert_eq!(find("3"), "services.a.port");
        assert_eq!(find("5"), "services.a.health_check.interval");
        assert_eq!(find("1\n"), "gateway.routes[1].service");
        assert_eq!(find("a]"), "services.a");
    }
}
