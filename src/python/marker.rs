//! PEP 508 environment markers (`python_version >= "3.8" and sys_platform == "linux"`),
//! parsed once and evaluated for each target platform.
//!
//! Comparisons of version variables use PEP 440 release ordering (`3.9` < `3.11`,
//! `==3.11.*`, `~=3.10`); anything else compares as strings (`==`, `!=`, `in`,
//! `not in`), as packaging does when a side is not a version. `extra` is never set:
//! hoist installs no extras, so `extra == "…"` is false.

use std::cmp::Ordering;

/// The values a marker reads, for one target interpreter and platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// `3.11`.
    pub python_version: String,
    /// `3.11.10` (or `3.11.0` when only the minor version is known).
    pub python_full_version: String,
    /// `x86_64`, `aarch64`, `armv7l`.
    pub platform_machine: String,
}

impl Environment {
    fn get(&self, variable: &str) -> Option<&str> {
        Some(match variable {
            "python_version" => &self.python_version,
            "python_full_version" | "implementation_version" => &self.python_full_version,
            "platform_machine" => &self.platform_machine,
            "sys_platform" => "linux",
            "platform_system" => "Linux",
            "os_name" => "posix",
            "implementation_name" => "cpython",
            "platform_python_implementation" => "CPython",
            // Not knowable without running the image's kernel: empty, as in packaging
            // when the value is unavailable.
            "platform_release" | "platform_version" | "extra" => "",
            _ => return None,
        })
    }
}

/// A parsed marker expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Both hold.
    And(Box<Marker>, Box<Marker>),
    /// Either holds.
    Or(Box<Marker>, Box<Marker>),
    /// `left op right`; each side a variable or a quoted string.
    Compare {
        /// Left operand.
        left: Operand,
        /// The operator as written (`>=`, `in`, `not in`, …).
        op: String,
        /// Right operand.
        right: Operand,
    },
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// An environment variable.
    Variable(String),
    /// A quoted string.
    Text(String),
}

const VERSION_VARIABLES: [&str; 3] = [
    "python_version",
    "python_full_version",
    "implementation_version",
];

impl Marker {
    /// Parses `text`; the error says what was expected where.
    pub fn parse(text: &str) -> Result<Marker, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let marker = parser.or()?;
        match parser.tokens.get(parser.at) {
            None => Ok(marker),
            Some(token) => Err(format!("unexpected {token:?} in marker `{text}`")),
        }
    }

    /// Whether the marker holds in `env`.
    pub fn evaluate(&self, env: &Environment) -> Result<bool, String> {
        match self {
            Marker::And(a, b) => Ok(a.evaluate(env)? && b.evaluate(env)?),
            Marker::Or(a, b) => Ok(a.evaluate(env)? || b.evaluate(env)?),
            Marker::Compare { left, op, right } => {
                let value = |operand: &Operand| match operand {
                    Operand::Text(text) => Ok(text.clone()),
                    Operand::Variable(name) => env
                        .get(name)
                        .map(str::to_owned)
                        .ok_or_else(|| format!("unknown marker variable `{name}`")),
                };
                let (l, r) = (value(left)?, value(right)?);
                let versions = [left, right]
                    .iter()
                    .any(|o| matches!(o, Operand::Variable(v) if VERSION_VARIABLES.contains(&v.as_str())));
                compare(&l, op, &r, versions)
            }
        }
    }
}

fn compare(left: &str, op: &str, right: &str, versions: bool) -> Result<bool, String> {
    match op {
        "in" => return Ok(right.contains(left)),
        "not in" => return Ok(!right.contains(left)),
        "===" => return Ok(left == right),
        _ => {}
    }
    if versions && let (Some(l), Some(r)) = (release(left), release_pattern(right)) {
        let (r, wildcard) = r;
        let order = compare_release(&l, &r, wildcard);
        return Ok(match op {
            "==" => order == Ordering::Equal,
            "!=" => order != Ordering::Equal,
            "<" => order == Ordering::Less,
            "<=" => order != Ordering::Greater,
            ">" => order == Ordering::Greater,
            ">=" => order != Ordering::Less,
            "~=" => {
                // ~=X.Y means >=X.Y, ==X.*: the prefix without the last component.
                let prefix = &r[..r.len().saturating_sub(1).max(1)];
                order != Ordering::Less && compare_release(&l, prefix, true) == Ordering::Equal
            }
            other => return Err(format!("unknown marker operator `{other}`")),
        });
    }
    match op {
        "==" => Ok(left == right),
        "!=" => Ok(left != right),
        other => Err(format!(
            "`{left}` {other} `{right}`: only == and != compare values that are not versions"
        )),
    }
}

/// `3.11.4` → [3, 11, 4]; `None` for anything else (pre-releases included: the
/// interpreter versions hoist targets are final releases).
fn release(text: &str) -> Option<Vec<u64>> {
    text.split('.').map(|part| part.parse().ok()).collect()
}

/// A version, or a `3.11.*` prefix (wildcard = true).
fn release_pattern(text: &str) -> Option<(Vec<u64>, bool)> {
    match text.strip_suffix(".*") {
        Some(prefix) => Some((release(prefix)?, true)),
        None => Some((release(text)?, false)),
    }
}

/// Compares releases padded with zeros; with `prefix`, only as many components as the
/// pattern has.
fn compare_release(version: &[u64], pattern: &[u64], prefix: bool) -> Ordering {
    let len = if prefix {
        pattern.len()
    } else {
        version.len().max(pattern.len())
    };
    (0..len)
        .map(|i| {
            let a = version.get(i).copied().unwrap_or(0);
            let b = pattern.get(i).copied().unwrap_or(0);
            a.cmp(&b)
        })
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Word(String),
    Text(String),
    Op(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                tokens.push(if c == '(' { Token::Open } else { Token::Close });
            }
            '\'' | '"' => {
                chars.next();
                let rest = &text[i + 1..];
                let end = rest
                    .find(c)
                    .ok_or_else(|| format!("unterminated string in marker `{text}`"))?;
                tokens.push(Token::Text(rest[..end].to_owned()));
                for _ in 0..=rest[..end].chars().count() {
                    chars.next();
                }
            }
            '<' | '>' | '=' | '!' | '~' => {
                let op: String = text[i..]
                    .chars()
                    .take_while(|c| matches!(c, '<' | '>' | '=' | '!' | '~'))
                    .collect();
                for _ in 0..op.len() {
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' => {
                let word: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                    .collect();
                for _ in 0..word.len() {
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(format!("unexpected `{other}` in marker `{text}`")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn or(&mut self) -> Result<Marker, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Word("or".into())) {
            self.at += 1;
            left = Marker::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Marker, String> {
        let mut left = self.atom()?;
        while self.peek() == Some(&Token::Word("and".into())) {
            self.at += 1;
            left = Marker::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Marker, String> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                other => Err(format!("expected `)`, found {other:?}")),
            };
        }
        let left = self.operand()?;
        let op = match self.next() {
            Some(Token::Op(op))
                if matches!(
                    op.as_str(),
                    "<" | "<=" | "!=" | "==" | ">=" | ">" | "~=" | "==="
                ) =>
            {
                op
            }
            Some(Token::Word(word)) if word == "in" => word,
            Some(Token::Word(word)) if word == "not" => match self.next() {
                Some(Token::Word(w)) if w == "in" => "not in".to_owned(),
                other => return Err(format!("expected `in` after `not`, found {other:?}")),
            },
            other => return Err(format!("expected a comparison operator, found {other:?}")),
        };
        let right = self.operand()?;
        Ok(Marker::Compare { left, op, right })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Operand::Text(text)),
            Some(Token::Word(word)) => Ok(Operand::Variable(word)),
            other => Err(format!(
                "expected a marker variable or a quoted string, found {other:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(machine: &str) -> Environment {
        Environment {
            python_version: "3.11".into(),
            python_full_version: "3.11.10".into(),
            platform_machine: machine.into(),
        }
    }

    fn holds(marker: &str, machine: &str) -> bool {
        Marker::parse(marker)
            .unwrap_or_else(|e| panic!("{marker}: {e}"))
            .evaluate(&env(machine))
            .unwrap_or_else(|e| panic!("{marker}: {e}"))
    }

    #[test]
    fn markers_evaluate_per_platform() {
        let cases = [
            ("python_version >= \"3.8\"", true),
            ("python_version < '3.9'", false),
            ("python_version >= '3.11' and python_version < '3.12'", true),
            ("python_full_version == '3.11.*'", true),
            ("python_full_version ~= '3.10.2'", false),
            ("python_version ~= '3.10'", true),
            ("python_version > '3.9'", true),
            ("sys_platform == 'win32'", false),
            (
                "sys_platform == \"linux\" and platform_machine == 'x86_64'",
                true,
            ),
            (
                "platform_machine == 'aarch64' or platform_machine == 'arm64'",
                false,
            ),
            (
                "(os_name == 'nt' or platform_system == 'Linux') and implementation_name == 'cpython'",
                true,
            ),
            ("platform_python_implementation != 'PyPy'", true),
            ("'x86' in platform_machine", true),
            ("platform_machine not in 'x86_64 amd64'", false),
            ("extra == 'dev'", false),
            (
                "sys_platform == 'darwin' or python_version < '3.10' or platform_machine == 'x86_64'",
                true,
            ),
        ];
        for (marker, expected) in cases {
            assert_eq!(holds(marker, "x86_64"), expected, "{marker}");
        }
        assert!(holds("platform_machine == 'aarch64'", "aarch64"));
        assert!(!holds("platform_machine == 'aarch64'", "x86_64"));
    }

    #[test]
    fn bad_markers_are_errors() {
        for bad in [
            "python_version >=",
            "python_version >= '3.8' and",
            "(python_version >= '3.8'",
            "python_version >= '3.8",
            "python_version is '3.8'",
        ] {
            assert!(Marker::parse(bad).is_err(), "{bad}");
        }
        let unknown = Marker::parse("colour == 'red'").unwrap();
        assert!(
            unknown
                .evaluate(&env("x86_64"))
                .unwrap_err()
                .contains("colour")
        );
    }
}
