//! The Dockerfile's word rules: variable substitution (`$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR:+alt}`), quotes and the escape character, as BuildKit's
//! shell lexer applies them to `ENV`, `LABEL`, `COPY`, `WORKDIR`, `USER`, `EXPOSE`…
//! (never to `RUN`, `CMD` or `ENTRYPOINT`, whose shell expands at run time).

use std::collections::BTreeMap;

/// Variables in scope for substitution (ARG and ENV values).
pub type Vars = BTreeMap<String, String>;

/// Splits `text` into words on unquoted whitespace, substituting variables and removing
/// quotes and escapes. The error says what is wrong (the caller adds file and line).
pub fn split(text: &str, escape: char, vars: &Vars) -> Result<Vec<String>, String> {
    Lexer::new(text, escape, vars).run(true)
}

/// One word: like [`split`], but whitespace is kept (`WORKDIR /my dir`).
pub fn word(text: &str, escape: char, vars: &Vars) -> Result<String, String> {
    Ok(Lexer::new(text, escape, vars).run(false)?.concat())
}

struct Lexer<'a> {
    chars: Vec<char>,
    at: usize,
    escape: char,
    vars: &'a Vars,
}

impl<'a> Lexer<'a> {
    fn new(text: &str, escape: char, vars: &'a Vars) -> Lexer<'a> {
        Lexer {
            chars: text.trim().chars().collect(),
            at: 0,
            escape,
            vars,
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.at).copied();
        self.at += 1;
        c
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn run(mut self, split_words: bool) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut current = String::new();
        // A word of only quotes (`""`) is still a word.
        let mut started = false;
        while let Some(c) = self.next() {
            match c {
                c if split_words && c.is_whitespace() => {
                    if started {
                        words.push(std::mem::take(&mut current));
                        started = false;
                    }
                    continue;
                }
                '\'' => self.single_quoted(&mut current)?,
                '"' => self.double_quoted(&mut current)?,
                '$' => current.push_str(&self.variable()?),
                c if c == self.escape => match self.next() {
                    Some(next) => current.push(next),
                    None => current.push(c),
                },
                c => current.push(c),
            }
            started = true;
        }
        if started {
            words.push(current);
        }
        Ok(words)
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), String> {
        loop {
            match self.next() {
                Some('\'') => return Ok(()),
                Some(c) => out.push(c),
                None => return Err("unterminated single quote".into()),
            }
        }
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), String> {
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => out.push_str(&self.variable()?),
                Some(c) if c == self.escape => match self.peek() {
                    // Inside double quotes the escape only protects these, as in sh.
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        out.push(next);
                        self.at += 1;
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
                None => return Err("unterminated double quote".into()),
            }
        }
    }

    /// After a `$`: the variable's value (a lone `$` stays itself).
    fn variable(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.at += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok(self.vars.get(&name).cloned().unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            name.push(c);
            self.at += 1;
        }
        name
    }

    /// `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`.
    fn braced(&mut self) -> Result<String, String> {
        let name = self.name();
        if name.is_empty() {
            return Err("`${` without a variable name".into());
        }
        let value = self.vars.get(&name);
        let colon = self.peek() == Some(':');
        if colon {
            self.at += 1;
        }
        let operator = self.next();
        if operator == Some('}') && !colon {
            return Ok(value.cloned().unwrap_or_default());
        }
        let word = self.modifier_word(&name)?;
        // With the colon, an empty value counts as unset, as in sh.
        let set = value.is_some_and(|v| !colon || !v.is_empty());
        match operator {
            Some('-') => Ok(if set {
                value.cloned().unwrap_or_default()
            } else {
                word
            }),
            Some('+') => Ok(if set { word } else { String::new() }),
            Some(other) => Err(format!(
                "`${{{name}{}{other}…}}`: only `:-`, `-`, `:+` and `+` are supported",
                if colon { ":" } else { "" }
            )),
            None => Err(format!("`${{{name}` is not closed with `}}`")),
        }
    }

    /// The word of a `${NAME:-word}` up to its closing brace, itself substituted.
    fn modifier_word(&mut self, name: &str) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('}') => return Ok(out),
                Some('$') => out.push_str(&self.variable()?),
                Some('\'') => self.single_quoted(&mut out)?,
                Some('"') => self.double_quoted(&mut out)?,
                Some(c) if c == self.escape => {
                    if let Some(next) = self.next() {
                        out.push(next);
                    }
                }
                Some(c) => out.push(c),
                None => return Err(format!("`${{{name}` is not closed with `}}`")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("APP", "/srv/app"), ("EMPTY", ""), ("PORT", "8080")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_every_form() {
        let v = vars();
        assert_eq!(word("$APP/bin", '\\', &v).unwrap(), "/srv/app/bin");
        assert_eq!(word("${APP}x", '\\', &v).unwrap(), "/srv/appx");
        assert_eq!(word("${NOPE:-/opt}", '\\', &v).unwrap(), "/opt");
        assert_eq!(word("${EMPTY:-d}", '\\', &v).unwrap(), "d");
        assert_eq!(word("${EMPTY-d}", '\\', &v).unwrap(), "");
        assert_eq!(word("${PORT:+set}", '\\', &v).unwrap(), "set");
        assert_eq!(word("${NOPE:+set}", '\\', &v).unwrap(), "");
        assert_eq!(word("${NOPE:-$PORT}", '\\', &v).unwrap(), "8080");
        assert_eq!(word("$NOPE", '\\', &v).unwrap(), "");
        assert_eq!(word("cost $5", '\\', &v).unwrap(), "cost ");
        assert_eq!(word("a $ b", '\\', &v).unwrap(), "a $ b");
    }

    #[test]
    fn quotes_and_escapes() {
        let v = vars();
        assert_eq!(
            split(r#"A="x y" B='$APP' C=\$APP D="\"q\"""#, '\\', &v).unwrap(),
            ["A=x y", "B=$APP", "C=$APP", "D=\"q\""]
        );
        assert_eq!(split("a  ``b c", '`', &v).unwrap(), ["a", "`b", "c"]);
        assert_eq!(split("C:\\dir", '`', &v).unwrap(), ["C:\\dir"]);
        assert_eq!(split(r#"x """#, '\\', &v).unwrap(), ["x", ""]);
    }

    #[test]
    fn errors_say_what() {
        let v = vars();
        assert!(
            word("\"open", '\\', &v)
                .unwrap_err()
                .contains("double quote")
        );
        assert!(word("${APP", '\\', &v).unwrap_err().contains("not closed"));
        assert!(
            word("${APP#x}", '\\', &v)
                .unwrap_err()
                .contains("supported")
        );
        assert!(word("${}", '\\', &v).unwrap_err().contains("name"));
    }
}
