//! Helm's `Chart.yaml`: the top-level `appVersion` (the version of the app the chart
//! deploys; the chart's own `version` is the chart author's to move).
//!
//! Top-level keys of a YAML mapping start at column 0, and nothing of a nested value
//! (block scalars, nested mappings, sequences) does, so a line scanner finds the key
//! without a YAML parser, and the edit keeps the quoting style: `appVersion: "1.2.3"`,
//! `appVersion: '1.2.3'` and `appVersion: 1.2.3` each stay as they are.

use std::ops::Range;
use std::path::Path;

use crate::release::{ReleaseError, Result, line_of};

/// The span of the characters of the top-level `appVersion`.
pub(super) fn chart_version_span(path: &Path, text: &str) -> Result<Range<usize>> {
    match top_level_scalar(text, "appVersion") {
        Found::Scalar(span) => Ok(span),
        Found::Missing => Err(ReleaseError::NoVersion {
            path: path.to_path_buf(),
            expected: "expected a top-level `appVersion:`".into(),
        }),
        Found::Bad { at, message } => Err(ReleaseError::Malformed {
            path: path.to_path_buf(),
            line: line_of(text, at),
            message,
        }),
    }
}

/// What [`top_level_scalar`] found.
pub(super) enum Found {
    /// The characters of the value (inside any quotes).
    Scalar(Range<usize>),
    /// No such top-level key.
    Missing,
    /// The key is there but its value cannot be read or rewritten safely.
    Bad {
        /// Where.
        at: usize,
        /// Why.
        message: String,
    },
}

/// The value of top-level `key` (written bare, `"key"` or `'key'`) when it is a
/// one-line scalar.
pub(super) fn top_level_scalar(text: &str, key: &str) -> Found {
    let mut found: Option<(usize, Range<usize>)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let Some(after_key) = [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .find_map(|spelling| content.strip_prefix(spelling.as_str()))
        else {
            continue;
        };
        let after_key_trimmed = after_key.trim_start_matches([' ', '\t']);
        let Some(value) = after_key_trimmed.strip_prefix(':') else {
            continue; // `appVersionX:` or not a key
        };
        if !(value.is_empty() || value.starts_with([' ', '\t'])) {
            continue;
        }
        if let Some((first, _)) = &found {
            return Found::Bad {
                at: start,
                message: format!(
                    "`{key}` appears twice at the top level (first on line {})",
                    line_of(text, *first)
                ),
            };
        }
        let value_at = start + (content.len() - value.len());
        match scalar(value, value_at, key) {
            Ok(span) => found = Some((start, span)),
            Err(message) => {
                return Found::Bad { at: start, message };
            }
        }
    }
    found.map_or(Found::Missing, |(_, span)| Found::Scalar(span))
}

/// The characters of a one-line YAML scalar `value` (the text after `key:`), at
/// `offset` in the file.
fn scalar(value: &str, offset: usize, key: &str) -> std::result::Result<Range<usize>, String> {
    let trimmed = value.trim_start_matches([' ', '\t']);
    let at = offset + (value.len() - trimmed.len());
    let refuse = |why: &str| format!("`{key}`: {why}");
    match trimmed.chars().next() {
        None | Some('#') => Err(refuse("has no value on its line")),
        Some(quote @ ('"' | '\'')) => {
            let inner = &trimmed[1..];
            let close = inner
                .find(quote)
                .ok_or_else(|| refuse("the quoted value does not end on its line"))?;
            let rest = inner[close + 1..].trim_start_matches([' ', '\t']);
            // `''` is YAML's escaped quote; a version holds none.
            if inner[close + 1..].starts_with(quote) || inner[..close].contains('\\') {
                return Err(refuse("the value uses escapes; write it plainly"));
            }
            if !(rest.is_empty() || rest.starts_with('#')) {
                return Err(refuse("unexpected text after the quoted value"));
            }
            Ok(at + 1..at + 1 + close)
        }
        Some('|' | '>' | '[' | '{' | '&' | '*' | '!') => {
            Err(refuse("expected a plain or quoted one-line value"))
        }
        Some(_) => {
            // A plain scalar ends at ` #` (a comment) or the end of the line.
            let end = trimmed
                .find(" #")
                .or_else(|| trimmed.find("\t#"))
                .unwrap_or(trimmed.len());
            let plain = trimmed[..end].trim_end_matches([' ', '\t']);
            Ok(at..at + plain.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Result<&str> {
        chart_version_span(Path::new("chart/Chart.yaml"), text).map(|span| &text[span])
    }

    #[test]
    fn finds_the_top_level_app_version_in_each_style() {
        for (text, expected) in [
            (
                "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: \"1.16.0\"\n",
                "1.16.0",
            ),
            ("appVersion: '1.2.3' # the app\n", "1.2.3"),
            ("appVersion: 1.2.3\r\nversion: 9.9.9\r\n", "1.2.3"),
            ("appVersion:   1.2.3-rc.1   # note\n", "1.2.3-rc.1"),
            ("\"appVersion\": \"2.0.0\"\n", "2.0.0"),
            (
                "dependencies:\n  - name: db\n    appVersion: 9.9.9\ndescription: |\n  appVersion: 8.8.8\nappVersion: 1.0.0",
                "1.0.0",
            ),
        ] {
            assert_eq!(
                version(text).unwrap_or_else(|e| panic!("{e}\n{text}")),
                expected
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_rewrite() {
        for (text, detail) in [
            ("name: web\nversion: 1.0.0\n", "no version"),
            (
                "appVersion: 1.0.0\nappVersion: 1.0.1\n",
                ":2: `appVersion` appears twice",
            ),
            ("appVersion: |\n  1.0.0\n", "one-line"),
            ("appVersion:\n", "no value"),
            ("appVersion: \"1.0.0\n", "does not end"),
            ("appVersion: \"1.0.0\" x\n", "after the quoted"),
        ] {
            let err = version(text).unwrap_err().to_string();
            assert!(err.starts_with("chart/Chart.yaml"), "{err}");
            assert!(err.contains(detail), "expected {detail:?} in {err}");
        }
    }
}
