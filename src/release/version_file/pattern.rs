//! Any file, through a pattern: `{ path = "deploy/values.yaml", pattern = 'tag:
//! "(?P<version>[^"]+)"' }`. The `version` group's characters are the version; the
//! pattern must match exactly once, so a bump never edits the wrong one of two
//! look-alike lines.
//!
//! Patterns are the `regex` crate's syntax, compiled multi-line (`^` and `$` match at
//! line boundaries) with CRLF-aware line ends, as a user who writes `^tag:` expects.

use std::ops::Range;
use std::path::Path;

use regex::{Regex, RegexBuilder};

use crate::release::{ReleaseError, Result, line_of};

/// The capture group holding the version.
pub const GROUP: &str = "version";

/// A compiled version pattern.
#[derive(Clone, Debug)]
pub struct VersionPattern {
    regex: Regex,
}

impl VersionPattern {
    /// Compiles `pattern`; the error says what is wrong (a syntax error, no `version`
    /// group).
    pub fn new(pattern: &str) -> std::result::Result<VersionPattern, String> {
        let regex = RegexBuilder::new(pattern)
            .multi_line(true)
            .crlf(true)
            .build()
            .map_err(|e| format!("`{pattern}` is not a valid regular expression: {e}"))?;
        if !regex.capture_names().any(|name| name == Some(GROUP)) {
            return Err(format!(
                "`{pattern}` has no `(?P<{GROUP}>…)` group to say where the version is"
            ));
        }
        Ok(VersionPattern { regex })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// The span of the `version` group of the one match in `text`.
    pub(super) fn span(&self, path: &Path, text: &str) -> Result<Range<usize>> {
        let mut matches = self.regex.captures_iter(text);
        let first = matches.next();
        let more = matches.count();
        let count = usize::from(first.is_some()) + more;
        let Some(captures) = first.filter(|_| more == 0) else {
            return Err(ReleaseError::PatternMatches {
                path: path.to_path_buf(),
                pattern: self.as_str().to_string(),
                count,
            });
        };
        let group = captures
            .name(GROUP)
            .ok_or_else(|| ReleaseError::Malformed {
                path: path.to_path_buf(),
                line: line_of(text, captures.get(0).map_or(0, |m| m.start())),
                message: format!(
                    "the pattern `{}` matched without its `{GROUP}` group",
                    self.as_str()
                ),
            })?;
        Ok(group.range())
    }
}

impl PartialEq for VersionPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for VersionPattern {}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = r#"tag: "(?P<version>[^"]+)""#;

    #[test]
    fn the_version_group_of_the_one_match() {
        let pattern = VersionPattern::new(TAG).unwrap();
        let text = "image:\r\n  repository: acme/web\r\n  tag: \"1.2.3\"\r\n";
        let span = pattern.span(Path::new("values.yaml"), text).unwrap();
        assert_eq!(&text[span], "1.2.3");
        // `^` and `$` are per line, CRLF included.
        let anchored = VersionPattern::new(r"^  tag: (?P<version>\S+)$").unwrap();
        let text = "other: x\r\n  tag: 1.2.3\r\n";
        assert_eq!(&text[anchored.span(Path::new("v"), text).unwrap()], "1.2.3");
    }

    #[test]
    fn zero_or_two_matches_and_bad_patterns_are_refused() {
        let pattern = VersionPattern::new(TAG).unwrap();
        for (text, count) in [("tag: 1\n", 0), ("tag: \"1.0.0\"\ntag: \"1.0.0\"\n", 2)] {
            let err = pattern
                .span(Path::new("deploy/values.yaml"), text)
                .unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("deploy/values.yaml: "), "{message}");
            assert!(
                message.contains(&format!("matches {count} times")),
                "{message}"
            );
        }
        assert!(
            VersionPattern::new("tag: (.*)")
                .unwrap_err()
                .contains("no `(?P<version>")
        );
        assert!(
            VersionPattern::new("tag: (?P<version>")
                .unwrap_err()
                .contains("not a valid")
        );
        let optional = VersionPattern::new("v(?P<version>x)?").unwrap();
        assert!(
            optional
                .span(Path::new("f"), "v\n")
                .unwrap_err()
                .to_string()
                .contains("without")
        );
    }
}
