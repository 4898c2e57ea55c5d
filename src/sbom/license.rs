//! Declared licenses as SPDX license expressions. Package metadata holds free text
//! ("MIT License", "BSD"); an SPDX document may only carry valid expressions over
//! identifiers of the SPDX license list, so a declared license is used when every
//! identifier in it is one we know (a common subset of the list, plus a few
//! well-known spellings mapped to their identifier), and is `NOASSERTION` otherwise,
//! with the text kept in the package's `licenseComments`.

/// SPDX license identifiers accepted as they are (a subset of the SPDX license list).
const KNOWN: &[&str] = &[
    "0BSD",
    "AFL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-2.0",
    "BlueOak-1.0.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-4-Clause",
    "BSL-1.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.2",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "MS-PL",
    "NCSA",
    "OpenSSL",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
    // Deprecated identifiers, still on the list (old metadata uses them).
    "GPL-2.0",
    "GPL-2.0+",
    "GPL-3.0",
    "GPL-3.0+",
    "LGPL-2.1",
    "LGPL-2.1+",
    "LGPL-3.0",
    "LGPL-3.0+",
    "AGPL-3.0",
];

/// License exceptions accepted after `WITH`.
const EXCEPTIONS: &[&str] = &[
    "Classpath-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
    "OpenSSL-exception",
];

/// Free-text spellings seen in package metadata, and their identifier.
const SPELLINGS: &[(&str, &str)] = &[
    ("MIT License", "MIT"),
    ("The MIT License", "MIT"),
    ("Apache 2.0", "Apache-2.0"),
    ("Apache-2", "Apache-2.0"),
    ("Apache License 2.0", "Apache-2.0"),
    ("Apache License, Version 2.0", "Apache-2.0"),
    ("Apache Software License", "Apache-2.0"),
    ("BSD-3", "BSD-3-Clause"),
    ("3-Clause BSD License", "BSD-3-Clause"),
    ("new BSD", "BSD-3-Clause"),
    ("ISC License", "ISC"),
    ("Mozilla Public License 2.0", "MPL-2.0"),
    ("PSF", "PSF-2.0"),
    ("Python Software Foundation License", "PSF-2.0"),
    ("Public Domain", "Unlicense"),
];

/// `declared` as a valid SPDX expression over known identifiers, if it is one.
pub fn spdx_expression(declared: &str) -> Option<String> {
    let text = declared.trim();
    if let Some((_, id)) = SPELLINGS.iter().find(|(s, _)| s.eq_ignore_ascii_case(text)) {
        return Some((*id).to_string());
    }
    valid(text).then(|| text.to_string())
}

/// Whether `text` is `id`, `id WITH exception`, or such terms joined by AND/OR, with
/// balanced parentheses.
fn valid(text: &str) -> bool {
    let spaced = text.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    if tokens.is_empty() {
        return false;
    }
    let mut depth = 0i32;
    // Whether the next token must be an operand (an id or an opening parenthesis).
    let mut want_operand = true;
    let mut after_with = false;
    for token in tokens {
        match token {
            "(" if want_operand => depth += 1,
            ")" if !want_operand => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            "AND" | "OR" if !want_operand => want_operand = true,
            "WITH" if !want_operand => {
                want_operand = true;
                after_with = true;
            }
            id if want_operand => {
                let known = if after_with {
                    EXCEPTIONS.contains(&id)
                } else {
                    KNOWN.contains(&id)
                };
                if !known {
                    return false;
                }
                want_operand = false;
                after_with = false;
            }
            _ => return false,
        }
    }
    depth == 0 && !want_operand
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_expressions_pass_and_free_text_does_not() {
        for (given, wanted) in [
            ("MIT", Some("MIT")),
            ("MIT License", Some("MIT")),
            ("Apache-2.0 OR MIT", Some("Apache-2.0 OR MIT")),
            (
                "(MIT OR Apache-2.0) AND BSD-3-Clause",
                Some("(MIT OR Apache-2.0) AND BSD-3-Clause"),
            ),
            (
                "Apache-2.0 WITH LLVM-exception",
                Some("Apache-2.0 WITH LLVM-exception"),
            ),
            ("BSD", None),
            ("MIT OR", None),
            ("(MIT", None),
            ("Proprietary", None),
            ("", None),
        ] {
            assert_eq!(spdx_expression(given).as_deref(), wanted, "{given}");
        }
    }
}
