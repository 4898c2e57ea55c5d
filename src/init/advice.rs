//! What a `RUN` becomes: hoist runs nothing inside the image, so each command is
//! classified and answered with what to do instead (build on the host, a Python
//! dependency layer from a lock, packages the base image must have, or plainly not
//! translated).

use serde::Serialize;

/// What to do instead of one `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunAdvice {
    /// One sentence per kind of command in the `RUN`.
    pub advice: Vec<String>,
    /// OS packages the base image must already have (`apt-get install`, `apk add`…).
    pub packages: Vec<String>,
    /// Requirements files installed with pip (`pip install -r FILE`).
    pub requirements: Vec<String>,
    /// Host build commands (`npm ci`, `npm run build`, yarn, pnpm…).
    pub host_commands: Vec<String>,
}

/// Commands that only tidy up after an install in a Dockerfile layer: nothing to do.
const HOUSEKEEPING: [&str; 6] = [
    "apt-get update",
    "apt-get clean",
    "apt update",
    "rm -rf /var/lib/apt/lists",
    "rm -rf /var/cache",
    "apk update",
];

/// Classifies the shell text of one `RUN` (or the words of its exec form joined);
/// `trace` turns a requirements file named in it into its context path.
pub fn classify(command: &str, trace: &dyn Fn(&str) -> String) -> RunAdvice {
    let mut out = RunAdvice {
        advice: Vec::new(),
        packages: Vec::new(),
        requirements: Vec::new(),
        host_commands: Vec::new(),
    };
    let mut other = Vec::new();
    for part in commands(command) {
        let words: Vec<&str> = part.split_whitespace().collect();
        if let Some(packages) = os_packages(&words) {
            out.packages.extend(packages);
        } else if let Some(requirements) = pip_requirements(&words) {
            out.requirements
                .extend(requirements.iter().map(|r| trace(r)));
        } else if is_node_build(&words) {
            out.host_commands.push(part.clone());
        } else if !HOUSEKEEPING.iter().any(|h| part.starts_with(h)) && part != "true" {
            other.push(part);
        }
    }
    if !out.host_commands.is_empty() {
        out.advice.push(format!(
            "run `{}` on the host or in CI before `hoist build`, and copy its output",
            out.host_commands.join(" && ")
        ));
    }
    if !out.requirements.is_empty() {
        out.advice.push(format!(
            "install {} as a `python` layer from a lock: `{}` (see docs/dependencies.md)",
            out.requirements.join(", "),
            lock_command(&out.requirements[0])
        ));
    }
    if !out.packages.is_empty() {
        out.advice.push(format!(
            "the base image must already have these packages: {} (hoist installs no OS packages: use a base that has them, or build one)",
            out.packages.join(", ")
        ));
    }
    if !other.is_empty() {
        out.advice.push(format!(
            "not translated: `{}` runs at build time inside the image, and hoist runs nothing there: do it on the host and copy the result, or bake it into the base image",
            other.join(" && ")
        ));
    }
    if out.advice.is_empty() {
        out.advice
            .push("nothing to do: it only tidies up after an install".into());
    }
    out
}

/// The command that makes a hashed, universal lock from a requirements file.
pub fn lock_command(requirements: &str) -> String {
    format!("uv pip compile --universal --generate-hashes {requirements} -o requirements.lock")
}

/// Splits on `&&`, `||`, `;` and newlines (not inside quotes: a rough shell reading is
/// enough to name the commands).
fn commands(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ';' | '\n') => parts.push(std::mem::take(&mut current)),
            (None, '&' | '|') if chars.peek() == Some(&c) => {
                chars.next();
                parts.push(std::mem::take(&mut current));
            }
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

/// The packages of `apt-get install`, `apt install`, `apk add`, `yum`/`dnf`/`microdnf
/// install` (options and version pins dropped).
fn os_packages(words: &[&str]) -> Option<Vec<String>> {
    let (tool, rest) = words.split_first()?;
    let verb = match *tool {
        "apt-get" | "apt" | "yum" | "dnf" | "microdnf" => "install",
        "apk" => "add",
        _ => return None,
    };
    let at = rest.iter().position(|w| *w == verb)?;
    Some(
        rest[at + 1..]
            .iter()
            .filter(|w| !w.starts_with('-') && !w.contains('>') && !w.contains('<'))
            .map(|w| {
                let name = w.split(['=', '~']).next().unwrap_or(w);
                name.trim_matches(['"', '\'']).to_string()
            })
            .filter(|w| !w.is_empty())
            .collect(),
    )
}

/// The `-r FILE` arguments of `pip install`, `pip3 install`, `python -m pip install` or
/// `uv pip install` (a pip install of named packages gives an empty list: still pip).
fn pip_requirements(words: &[&str]) -> Option<Vec<String>> {
    let at = words.windows(2).position(|w| {
        (w[0] == "pip" || w[0] == "pip3" || w[0].ends_with("/pip") || w[0].ends_with("/pip3"))
            && w[1] == "install"
    })?;
    let mut files = Vec::new();
    let mut rest = words[at + 2..].iter();
    while let Some(word) = rest.next() {
        if *word == "-r" || *word == "--requirement" {
            if let Some(file) = rest.next() {
                files.push((*file).to_string());
            }
        } else if let Some(file) = word
            .strip_prefix("--requirement=")
            .or_else(|| word.strip_prefix("-r").filter(|f| !f.is_empty()))
        {
            files.push(file.to_string());
        }
    }
    if files.is_empty() {
        files.push("requirements.in".into());
    }
    Some(files)
}

fn is_node_build(words: &[&str]) -> bool {
    matches!(
        words,
        ["npm" | "yarn" | "pnpm" | "bun" | "npx" | "corepack", ..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_plain(command: &str) -> RunAdvice {
        classify(command, &|f| f.to_string())
    }

    #[test]
    fn node_builds_run_on_the_host() {
        let advice = classify_plain("npm ci && npm run build");
        assert_eq!(advice.host_commands, ["npm ci", "npm run build"]);
        assert!(advice.advice[0].contains("`npm ci && npm run build` on the host"));
    }

    #[test]
    fn pip_becomes_a_python_layer_with_the_lock_command() {
        let advice = classify_plain("pip install --no-cache-dir -r requirements.txt");
        assert_eq!(advice.requirements, ["requirements.txt"]);
        assert!(advice.advice[0].contains(
            "uv pip compile --universal --generate-hashes requirements.txt -o requirements.lock"
        ));
        assert_eq!(
            classify_plain("python -m pip install --requirement=req/prod.txt").requirements,
            ["req/prod.txt"]
        );
    }

    #[test]
    fn os_packages_are_named() {
        let advice = classify_plain(
            "apt-get update && apt-get install -y --no-install-recommends nginx supervisor=4.2* && rm -rf /var/lib/apt/lists/*",
        );
        assert_eq!(advice.packages, ["nginx", "supervisor"]);
        assert_eq!(advice.advice.len(), 1, "{advice:?}");
        assert_eq!(
            classify_plain("apk add --no-cache curl git").packages,
            ["curl", "git"]
        );
    }

    #[test]
    fn anything_else_is_said_plainly() {
        let advice = classify_plain("useradd -r app; echo 'a && b' > /x");
        assert!(
            advice.advice[0].starts_with("not translated: `useradd -r app && echo 'a && b' > /x`")
        );
    }
}
