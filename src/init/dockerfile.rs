//! A Dockerfile parser following the Dockerfile reference: parser directives
//! (`# escape=`), comments, line continuations (the escape character at a line's end),
//! case-insensitive instructions, leading `--flag=value` options, and the JSON (exec)
//! versus shell form of arguments. Heredocs (`<<EOF`) are refused with their line.

use super::InitError;
use std::path::Path;

/// One instruction, its continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// The keyword, upper-cased (`COPY`).
    pub keyword: String,
    /// Leading `--name=value` options (`--from=build`), value empty for a bare `--link`.
    pub flags: Vec<(String, String)>,
    /// The arguments after the flags, unprocessed (substitution happens later).
    pub rest: String,
    /// The arguments as a JSON array of strings, when they are one (exec form).
    pub json: Option<Vec<String>>,
}

impl Instruction {
    /// The value of flag `name` (without `--`).
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The instruction as written, shortened for reports.
    pub fn summary(&self) -> String {
        let flags: String = self
            .flags
            .iter()
            .map(|(n, v)| {
                if v.is_empty() {
                    format!("--{n} ")
                } else {
                    format!("--{n}={v} ")
                }
            })
            .collect();
        let text = format!("{} {flags}{}", self.keyword, self.rest);
        let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 120 {
            format!("{}…", one_line.chars().take(119).collect::<String>())
        } else {
            one_line
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug)]
pub struct Dockerfile {
    /// The escape character (`\`, or `` ` `` by directive).
    pub escape: char,
    /// Instructions in order.
    pub instructions: Vec<Instruction>,
}

/// Instructions that take `--flag` options before their arguments.
const FLAGGED: [&str; 5] = ["FROM", "COPY", "ADD", "RUN", "HEALTHCHECK"];

/// Parses Dockerfile `text` read from `path` (named in errors).
pub fn parse(path: &Path, text: &str) -> Result<Dockerfile, InitError> {
    let error = |line: usize, message: String| InitError::Dockerfile {
        path: path.to_path_buf(),
        line,
        message,
    };
    // Editors on Windows write a byte-order mark; BuildKit skips it too.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let (escape, first) = directives(&lines).map_err(|(line, m)| error(line, m))?;
    let mut instructions = Vec::new();
    let mut index = first;
    while index < lines.len() {
        let trimmed = lines[index].trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            index += 1;
            continue;
        }
        let start = index;
        let (joined, next) = logical_line(&lines, index, escape);
        index = next;
        let instruction = split_instruction(start + 1, &joined).map_err(|m| error(start + 1, m))?;
        if instruction.keyword == "ONBUILD" && instruction.rest.trim().is_empty() {
            return Err(error(start + 1, "ONBUILD needs an instruction".into()));
        }
        instructions.push(instruction);
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// Reads parser directives (`# escape=`` ` ``, `# syntax=…`) at the top of the file:
/// they end at the first line that is not one. Returns the escape character and the
/// index of the first line after them.
fn directives(lines: &[&str]) -> Result<(char, usize), (usize, String)> {
    let mut escape = '\\';
    let mut index = 0;
    while let Some(line) = lines.get(index) {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((name, value)) = body.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.contains(char::is_whitespace) || name.is_empty() {
            break;
        }
        if name == "escape" {
            escape = match value.trim() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err((
                        index + 1,
                        format!("escape directive `{other}`: only `\\` and `` ` `` are valid"),
                    ));
                }
            };
        }
        index += 1;
    }
    Ok((escape, index))
}

/// Joins the continuation lines of the instruction starting at `index`: a line ending
/// in the escape character continues on the next; comment lines between are dropped,
/// as are empty ones (which BuildKit allows with a warning).
fn logical_line(lines: &[&str], mut index: usize, escape: char) -> (String, usize) {
    let mut joined = String::new();
    loop {
        let line = lines[index].trim_end();
        index += 1;
        let Some(body) = line.strip_suffix(escape) else {
            joined.push_str(line);
            return (joined, index);
        };
        joined.push_str(body);
        while index < lines.len() {
            let next = lines[index].trim();
            if next.starts_with('#') || next.is_empty() {
                index += 1;
            } else {
                break;
            }
        }
        if index >= lines.len() {
            return (joined, index);
        }
    }
}

fn split_instruction(line: usize, text: &str) -> Result<Instruction, String> {
    let text = text.trim();
    let (keyword, mut rest) = match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    };
    let keyword = keyword.to_ascii_uppercase();
    if !keyword.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("`{keyword}` is not an instruction"));
    }
    let mut flags = Vec::new();
    if FLAGGED.contains(&keyword.as_str()) {
        while let Some(option) = rest.strip_prefix("--") {
            let end = option.find(char::is_whitespace).unwrap_or(option.len());
            let (name, value) = match option[..end].split_once('=') {
                Some((n, v)) => (n, v),
                None => (&option[..end], ""),
            };
            flags.push((name.to_ascii_lowercase(), value.to_string()));
            rest = option[end..].trim_start();
        }
    }
    if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") && heredoc(rest) {
        return Err(format!(
            "{keyword} with a heredoc (`<<`): heredocs are not supported by hoist init; \
             write the content to a file in the context and COPY it"
        ));
    }
    let json = rest
        .starts_with('[')
        .then(|| serde_json::from_str::<Vec<String>>(rest).ok())
        .flatten();
    Ok(Instruction {
        line,
        keyword,
        flags,
        rest: rest.to_string(),
        json,
    })
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` (but not a shift such as `1<<2`).
fn heredoc(text: &str) -> bool {
    text.match_indices("<<").any(|(at, _)| {
        let after = text[at + 2..].trim_start_matches('-');
        let after = after.trim_start_matches(['"', '\'']);
        after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Dockerfile {
        parse(Path::new("Dockerfile"), text).unwrap()
    }

    #[test]
    fn continuations_comments_and_case() {
        let file = parse_text(
            "# a comment\nfrom alpine:3.20 as build\n\nrun apk add \\\n    # inner comment\n    curl \\\n\n    git\ncopy --chown=1:2 --link a /b\n",
        );
        let keywords: Vec<_> = file
            .instructions
            .iter()
            .map(|i| i.keyword.as_str())
            .collect();
        assert_eq!(keywords, ["FROM", "RUN", "COPY"]);
        assert_eq!(file.instructions[0].rest, "alpine:3.20 as build");
        assert_eq!(file.instructions[1].line, 4);
        assert_eq!(
            file.instructions[1]
                .rest
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["apk", "add", "curl", "git"]
        );
        let copy = &file.instructions[2];
        assert_eq!(copy.line, 9);
        assert_eq!(copy.flag("chown"), Some("1:2"));
        assert_eq!(copy.flag("link"), Some(""));
        assert_eq!(copy.rest, "a /b");
    }

    #[test]
    fn escape_directive() {
        let file = parse_text("# escape=`\n\nFROM x\nRUN dir C:\\ `\n  /s\n");
        assert_eq!(file.escape, '`');
        assert_eq!(file.instructions[1].rest, "dir C:\\   /s");
        // A directive after a comment is a comment.
        let file = parse_text("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n");
        assert_eq!(file.escape, '\\');
        assert_eq!(file.instructions[1].rest, "a  b");
        let err = parse(Path::new("D"), "# escape=x\nFROM a\n").unwrap_err();
        assert!(err.to_string().contains("D:1"), "{err}");
    }

    #[test]
    fn json_and_shell_forms() {
        let file = parse_text(
            "CMD [\"nginx\", \"-g\", \"daemon off;\"]\nCMD nginx -g 'daemon off;'\nCMD [not json\n",
        );
        assert_eq!(
            file.instructions[0].json.as_deref(),
            Some(&["nginx".to_string(), "-g".into(), "daemon off;".into()][..])
        );
        assert_eq!(file.instructions[1].json, None);
        assert_eq!(file.instructions[2].json, None);
        let crlf = parse_text("\u{feff}FROM a\r\nRUN x \\\r\n  y\r\n");
        assert_eq!(crlf.instructions[1].rest, "x   y");
    }

    #[test]
    fn heredocs_are_refused_with_their_line() {
        let err = parse(
            Path::new("app/Dockerfile"),
            "FROM x\nRUN echo $((1<<2))\nRUN <<EOF\necho hi\nEOF\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("app/Dockerfile:3:"), "{err}");
        assert!(err.contains("heredoc"), "{err}");
        assert!(heredoc("cat <<-'END' > f"));
        assert!(!heredoc("echo $((1<<2))"));
    }
}
