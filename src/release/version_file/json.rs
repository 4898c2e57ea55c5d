//! package.json and other JSON version files: the top-level `"version"` string, found
//! by a small scanner over text serde_json has validated (serde_json reports line and
//! column; the scanner gives the byte span).

use std::ops::Range;
use std::path::Path;

use super::inner_span;
use crate::release::{ReleaseError, Result, line_of};

/// The span of the characters of the top-level `"version"` string.
pub(super) fn json_version_span(path: &Path, text: &str) -> Result<Range<usize>> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(ReleaseError::Malformed {
            path: path.to_path_buf(),
            line: e.line().max(1),
            message: e.to_string(),
        });
    }
    let malformed = |offset: usize, message: &str| ReleaseError::Malformed {
        path: path.to_path_buf(),
        line: line_of(text, offset),
        message: message.to_string(),
    };
    let mut scanner = JsonScanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    scanner.skip_whitespace();
    if scanner.peek() != Some(b'{') {
        return Err(malformed(scanner.at, "the top level is not an object"));
    }
    scanner.at += 1;
    let mut found = None;
    loop {
        scanner.skip_whitespace();
        match scanner.peek() {
            Some(b'}') => break,
            Some(b',') => {
                scanner.at += 1;
                continue;
            }
            Some(b'"') => {}
            _ => return Err(malformed(scanner.at, "expected a key")),
        }
        let key = scanner.string();
        scanner.skip_whitespace();
        scanner.at += 1; // the ':' (serde_json checked the syntax)
        scanner.skip_whitespace();
        let value_start = scanner.at;
        scanner.skip_value();
        if &text[key.start + 1..key.end - 1] == "version" {
            if text.as_bytes()[value_start] != b'"' {
                return Err(malformed(value_start, "\"version\" is not a string"));
            }
            // A later duplicate key wins in JavaScript's JSON.parse, as here.
            found = Some(value_start..scanner.at);
        }
    }
    let span = found.ok_or_else(|| ReleaseError::NoVersion {
        path: path.to_path_buf(),
        expected: "expected a top-level \"version\" string".into(),
    })?;
    let value: String = serde_json::from_str(&text[span.clone()])
        .map_err(|e| malformed(span.start, &e.to_string()))?;
    inner_span(path, text, span, &value)
}

/// Walks syntactically valid JSON (serde_json checked it first), byte by byte.
struct JsonScanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl JsonScanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string starting at the current `"`; returns its span, quotes included.
    fn string(&mut self) -> Range<usize> {
        let start = self.at;
        self.at += 1;
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => break,
                _ => {}
            }
        }
        start..self.at
    }

    fn skip_value(&mut self) {
        match self.peek() {
            Some(b'"') => {
                self.string();
            }
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(b) = self.peek() {
                    match b {
                        b'"' => {
                            self.string();
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return;
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
            }
        }
    }
}
