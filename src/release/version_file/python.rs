//! `*.py`: the module-level `__version__ = "…"` (either quote style, `__version__: str
//! = …` too).
//!
//! A small scanner walks the source as Python's tokenizer would for what matters here:
//! strings (single, triple, with escapes), comments, brackets and backslash
//! continuations, so a `__version__ = …` inside a docstring or a multi-line call is not
//! taken for an assignment. A logical line that starts at column 0 with `__version__`
//! and an `=` is the module-level assignment; an indented one (in a function, class or
//! `if`) or a second module-level one is an error naming the file and line: rewriting
//! one of two would leave the module disagreeing with itself.

use std::ops::Range;
use std::path::Path;

use crate::release::{ReleaseError, Result, line_of};

const NAME: &str = "__version__";

/// An assignment to `__version__` at the start of a logical line.
struct Assignment {
    /// Offset of the name.
    at: usize,
    /// Whether the line is indented (inside a block).
    nested: bool,
    /// Offset just after the `=`.
    value: usize,
}

/// The span of the characters of the module-level `__version__` string.
pub(super) fn python_version_span(path: &Path, text: &str) -> Result<Range<usize>> {
    let malformed = |offset: usize, message: String| ReleaseError::Malformed {
        path: path.to_path_buf(),
        line: line_of(text, offset),
        message,
    };
    let assignments = assignments(text);
    if let Some(nested) = assignments.iter().find(|a| a.nested) {
        return Err(malformed(
            nested.at,
            "`__version__` is assigned inside a function, class or block; only a module-level `__version__ = \"…\"` can be rewritten".into(),
        ));
    }
    let assignment = match assignments.as_slice() {
        [] => {
            return Err(ReleaseError::NoVersion {
                path: path.to_path_buf(),
                expected: "expected a module-level `__version__ = \"…\"`".into(),
            });
        }
        [one] => one,
        [first, second, ..] => {
            return Err(malformed(
                second.at,
                format!(
                    "a second module-level `__version__` (the first is on line {}); keep one",
                    line_of(text, first.at)
                ),
            ));
        }
    };
    let bytes = text.as_bytes();
    let mut at = assignment.value;
    while matches!(bytes.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    // `u"1.0"` is the same string; other prefixes (f, r, b) are not plain versions.
    if matches!(bytes.get(at), Some(b'u' | b'U')) {
        at += 1;
    }
    let not_plain = || {
        malformed(
            assignment.at,
            "`__version__` is not assigned a plain string literal (\"1.2.3\" or '1.2.3')".into(),
        )
    };
    let Some(&quote @ (b'"' | b'\'')) = bytes.get(at) else {
        return Err(not_plain());
    };
    if bytes.get(at + 1) == Some(&quote) {
        // `""` (empty) or a triple-quoted string: neither is a version to rewrite.
        return Err(not_plain());
    }
    let start = at + 1;
    let end = start
        + text[start..]
            .find([quote as char, '\\', '\n', '\r'])
            .ok_or_else(not_plain)?;
    if bytes[end] != quote {
        return Err(not_plain());
    }
    // Only a comment may follow: `"1.0" + suffix` is not a literal version.
    let rest = text[end + 1..]
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return Err(not_plain());
    }
    Ok(start..end)
}

/// Every assignment to `__version__` starting a logical line, in order.
fn assignments(text: &str) -> Vec<Assignment> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut depth = 0usize;
    let mut continued = false;
    let mut at = 0;
    let mut line_start = true;
    while at < bytes.len() {
        if line_start && depth == 0 && !continued {
            let indent = bytes[at..]
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\x0c'))
                .count();
            if let Some(value) = assignment_at(text, at + indent) {
                found.push(Assignment {
                    at: at + indent,
                    nested: indent > 0,
                    value,
                });
            }
        }
        line_start = false;
        continued = false;
        match bytes[at] {
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            b'\\' if matches!(bytes.get(at + 1), Some(b'\n')) => {
                continued = true;
                at += 2;
                line_start = true;
                continue;
            }
            b'\\' if bytes.get(at + 1) == Some(&b'\r') && bytes.get(at + 2) == Some(&b'\n') => {
                continued = true;
                at += 3;
                line_start = true;
                continue;
            }
            b'"' | b'\'' => {
                at = skip_string(bytes, at);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => line_start = true,
            _ => {}
        }
        at += 1;
    }
    found
}

/// If `__version__` is assigned at `at` (`__version__ = …` or `__version__: T = …`),
/// the offset just after the `=`.
fn assignment_at(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?.strip_prefix(NAME)?;
    let after_name = at + NAME.len();
    let next = rest.chars().next()?;
    if next.is_alphanumeric() || next == '_' {
        return None; // `__version_info__`
    }
    let line = rest.split('\n').next().unwrap_or_default();
    let trimmed = line.trim_start();
    let offset = after_name + (line.len() - trimmed.len());
    if let Some(annotated) = trimmed.strip_prefix(':') {
        // `__version__: str = "1.0"`: the `=` after the annotation.
        let equals = annotated.find('=')?;
        let after = offset + 1 + equals + 1;
        return (text.as_bytes().get(after) != Some(&b'=')).then_some(after);
    }
    let after_equals = trimmed.strip_prefix('=')?;
    (!after_equals.starts_with('=')).then_some(offset + 1)
}

/// The offset just past the string literal opening at `at` (a quote).
fn skip_string(bytes: &[u8], at: usize) -> usize {
    let quote = bytes[at];
    let triple = bytes.get(at + 1) == Some(&quote) && bytes.get(at + 2) == Some(&quote);
    let mut i = if triple { at + 3 } else { at + 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote && !triple => return i + 1,
            b if b == quote
                && bytes.get(i + 1) == Some(&quote)
                && bytes.get(i + 2) == Some(&quote) =>
            {
                return i + 3;
            }
            // An unterminated one-line string ends at the line (Python would refuse
            // the file; we only need to not run on).
            b'\n' if !triple => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Result<&str> {
        python_version_span(Path::new("pkg/version.py"), text).map(|span| &text[span])
    }

    #[test]
    fn finds_the_module_level_assignment() {
        for (text, expected) in [
            ("__version__ = \"1.2.3\"\n", "1.2.3"),
            ("__version__='1.2.3'", "1.2.3"),
            ("__version__: str = \"0.1.0\"  # bumped by hoist\n", "0.1.0"),
            ("__version__ = u'2.0.0'\r\n", "2.0.0"),
            (
                "\"\"\"Docs.\n__version__ = \"9.9.9\"\n\"\"\"\nimport os\n__version_info__ = (1, 0)\n\
                 x = f(\n__version__ = 3)\ndef v():\n    return __version__\n__version__ = \"1.0.0\"\n\
                 assert __version__ == \"1.0.0\"\n",
                "1.0.0",
            ),
            (
                "s = 'it\\'s'  # __version__ = '0'\n__version__ = \"1.0.0\"\n",
                "1.0.0",
            ),
            (
                "x = 1 + \\\n__version__ if False else 0\n__version__ = \"3.0.0\"\n",
                "3.0.0",
            ),
        ] {
            assert_eq!(
                version(text).unwrap_or_else(|e| panic!("{e}\n{text}")),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_rewrite_naming_file_and_line() {
        for (text, detail) in [
            ("import x\n", "no version"),
            (
                "__version__ = \"1.0.0\"\n__version__ = \"1.0.1\"\n",
                ":2: a second module-level",
            ),
            (
                "def f():\n    __version__ = \"1.0.0\"\n",
                ":2: `__version__` is assigned inside",
            ),
            (
                "class A:\n  __version__ = '1'\n__version__ = '1.0.0'\n",
                ":2:",
            ),
            (
                "__version__ = get_version()\n",
                ":1: `__version__` is not assigned a plain",
            ),
            ("__version__ = version = '1.0.0'\n", "plain string"),
            ("__version__ = f\"{x}\"\n", "plain string"),
            ("__version__ = \"1.0\" + \"-dev\"\n", "plain string"),
            ("__version__ = \"\"\"1.0.0\"\"\"\n", "plain string"),
            ("__version__ = \"1.0.\\x30\"\n", "plain string"),
        ] {
            let err = version(text).unwrap_err().to_string();
            assert!(err.starts_with("pkg/version.py"), "{err}");
            assert!(err.contains(detail), "expected {detail:?} in {err}\n{text}");
        }
    }
}
