//! Credentials for a private package index, found as pip finds them: `user:password@`
//! in the index URL, else the `machine` entry for its host in the netrc file (`NETRC`,
//! else `~/.netrc`). They go to the index's own origin only (scheme, host and port:
//! never to a file host the index links to, never along a redirect elsewhere), and
//! never over plain HTTP to a host that is not this machine. URLs in messages are the
//! index URL without its user information.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::PythonError;
use crate::oci::reference::is_loopback;

/// The largest netrc file read.
const MAX_NETRC: u64 = 1024 * 1024;

/// An `Authorization` header value for one origin.
#[derive(Clone)]
pub struct Credentials {
    origin: reqwest::Url,
    header: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials for {} (hidden)",
            self.origin.origin().ascii_serialization()
        )
    }
}

impl Credentials {
    /// The header for `url`, when it is on the index's origin.
    pub fn header_for(&self, url: &str) -> Option<&str> {
        let url = reqwest::Url::parse(url).ok()?;
        (url.origin() == self.origin.origin()).then_some(self.header.as_str())
    }
}

/// The index URL without user information, and the credentials to send it: from the
/// URL, else from `netrc` (a path, read when it exists).
///
/// # Errors
/// A malformed URL, an unreadable netrc, or credentials that would go over plain HTTP to
/// another machine.
pub fn for_index(
    index: &str,
    netrc: Option<&Path>,
) -> Result<(reqwest::Url, Option<Credentials>), PythonError> {
    let refuse = |url: &str, message: &str| PythonError::Index {
        url: url.to_owned(),
        message: message.to_owned(),
    };
    let mut url = reqwest::Url::parse(index)
        .map_err(|e| refuse(&redact(index), &format!("not a URL: {e}")))?;
    let user = percent_decode(url.username());
    let password = url.password().map(percent_decode);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let host = url.host_str().unwrap_or_default().to_owned();
    // A password alone (a token, `https://:TOKEN@host`) is credentials too.
    let pair = if user.is_empty() && password.is_none() {
        match netrc {
            Some(path) => read_netrc(path)?.and_then(|text| netrc_entry(&text, &host)),
            None => None,
        }
    } else {
        Some((user, password.unwrap_or_default()))
    };
    let Some((user, password)) = pair else {
        return Ok((url, None));
    };
    let host_port = url
        .port()
        .map_or_else(|| host.clone(), |p| format!("{host}:{p}"));
    if url.scheme() != "https" && !is_loopback(&host_port) {
        return Err(refuse(
            url.as_str(),
            "credentials would be sent over plain HTTP: use an https:// index",
        ));
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let credentials = Credentials {
        origin: url.clone(),
        header: format!("Basic {token}"),
    };
    Ok((url, Some(credentials)))
}

/// The environment variables naming a default index, in the order they are read:
/// uv's (`UV_DEFAULT_INDEX`, and `UV_INDEX_URL`, the deprecated name uv still reads
/// for the same setting), then pip's (`PIP_INDEX_URL`, `--index-url`).
pub const INDEX_VARIABLES: [&str; 3] = ["UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"];

/// The default index the environment names, as uv and pip read it: the first of
/// [`INDEX_VARIABLES`] set and not empty, and its value (uv's `name=URL` form given
/// as the URL alone).
pub fn index_from_env() -> Option<(&'static str, String)> {
    default_index(|name| std::env::var(name).ok())
}

/// The environment variables naming extra indexes, each a space-separated list, in the
/// order their indexes are asked: uv's `UV_INDEX` (`--index`, `name=URL` entries
/// allowed), uv's deprecated `UV_EXTRA_INDEX_URL`, then pip's `PIP_EXTRA_INDEX_URL`
/// (`--extra-index-url`).
pub const EXTRA_INDEX_VARIABLES: [&str; 3] =
    ["UV_INDEX", "UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL"];

/// The extra indexes the environment names, as uv orders them (before the default
/// index, earlier entries first), each with the variable naming it; a URL named twice
/// is listed once.
pub fn extra_indexes_from_env() -> Vec<(&'static str, String)> {
    extra_indexes(|name| std::env::var(name).ok())
}

/// [`index_from_env`], reading variables with `get`.
fn default_index(get: impl Fn(&str) -> Option<String>) -> Option<(&'static str, String)> {
    INDEX_VARIABLES.iter().find_map(|variable| {
        let value = get(variable)?;
        let url = named_index(value.trim(), &get);
        (!url.is_empty()).then_some((*variable, url))
    })
}

/// [`extra_indexes_from_env`], reading variables with `get`.
fn extra_indexes(get: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    let mut indexes: Vec<(&'static str, String)> = Vec::new();
    for variable in EXTRA_INDEX_VARIABLES {
        let value = get(variable).unwrap_or_default();
        for url in value.split_whitespace().map(|v| named_index(v, &get)) {
            let key = url.trim_end_matches('/');
            if !key.is_empty() && !indexes.iter().any(|(_, u)| u.trim_end_matches('/') == key) {
                indexes.push((variable, url));
            }
        }
    }
    indexes
}

/// An index as uv's variables give it, `name=URL` or the URL alone (a `=` after `://`
/// is the URL's own): its URL, with the credentials uv reads for a named index from
/// `UV_INDEX_<NAME>_USERNAME` and `UV_INDEX_<NAME>_PASSWORD` (the name uppercased, every
/// other character than a letter or digit an underscore) when the URL carries none.
fn named_index(value: &str, get: &impl Fn(&str) -> Option<String>) -> String {
    let (name, url) = match value.split_once('=') {
        Some((name, url)) if !name.contains("://") => (name, url),
        _ => return value.to_owned(),
    };
    let key: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let user = get(&format!("UV_INDEX_{key}_USERNAME")).filter(|u| !u.is_empty());
    let password = get(&format!("UV_INDEX_{key}_PASSWORD")).filter(|p| !p.is_empty());
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return url.to_owned();
    };
    if !parsed.username().is_empty() || (user.is_none() && password.is_none()) {
        return url.to_owned();
    }
    // The URL's own form carries them from here on (percent-encoded), as if written there.
    let _ = parsed.set_username(user.as_deref().unwrap_or_default());
    let _ = parsed.set_password(password.as_deref());
    parsed.to_string()
}

/// The netrc file pip would read: `NETRC`, else `~/.netrc`.
pub fn netrc_path() -> Option<PathBuf> {
    std::env::var_os("NETRC")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".netrc"))
        })
}

/// `text` with any `user:password@` removed, for messages.
pub fn redact(text: &str) -> String {
    match reqwest::Url::parse(text) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => match (text.find("://"), text.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}{}", &text[..scheme + 3], &text[at + 1..])
            }
            _ => text.to_owned(),
        },
    }
}

fn read_netrc(path: &Path) -> Result<Option<String>, PythonError> {
    let io = |source| PythonError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut text = String::new();
    file.take(MAX_NETRC + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_NETRC {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_NETRC} bytes"
        ))));
    }
    Ok(Some(text))
}

/// The login and password of `host`'s `machine` entry, else of `default`.
fn netrc_entry(text: &str, host: &str) -> Option<(String, String)> {
    let mut tokens = text.split_whitespace();
    let mut found: Option<(String, String)> = None;
    let mut default = None;
    // Which entry the tokens belong to: Some(true) the host's, Some(false) another's.
    let mut current: Option<bool> = None;
    let mut is_default = false;
    let (mut login, mut password) = (String::new(), String::new());
    let mut finish = |current: Option<bool>, is_default: bool, login: &str, password: &str| {
        if current == Some(true) && found.is_none() {
            found = Some((login.to_owned(), password.to_owned()));
        } else if is_default && default.is_none() {
            default = Some((login.to_owned(), password.to_owned()));
        }
    };
    while let Some(token) = tokens.next() {
        match token {
            "machine" | "default" => {
                finish(current, is_default, &login, &password);
                (login, password) = (String::new(), String::new());
                is_default = token == "default";
                current = if is_default {
                    Some(false)
                } else {
                    Some(tokens.next() == Some(host))
                };
            }
            "login" => tokens.next().unwrap_or_default().clone_into(&mut login),
            "password" => tokens.next().unwrap_or_default().clone_into(&mut password),
            // A macro runs to the next blank line; its words are not credentials.
            "macdef" => current = Some(false),
            _ => {}
        }
    }
    finish(current, is_default, &login, &password);
    found.or(default)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_url_or_netrc_and_stay_on_the_origin() {
        let (url, creds) = for_index("https://u%40x:p%3Aw@pypi.example:8443/simple", None).unwrap();
        assert_eq!(url.as_str(), "https://pypi.example:8443/simple");
        let creds = creds.unwrap();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u@x:p:w")
        );
        assert_eq!(
            creds.header_for("https://pypi.example:8443/files/a.whl"),
            Some(expected.as_str())
        );
        for elsewhere in [
            "https://files.example/a.whl",
            "http://pypi.example:8443/a.whl",
            "https://pypi.example/a.whl",
        ] {
            assert_eq!(creds.header_for(elsewhere), None, "{elsewhere}");
        }
        assert!(!format!("{creds:?}").contains("cDp3"));

        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(
            &netrc,
            "machine other.example login no password no\nmachine pypi.example\n  login me\n  password secret\ndefault login anon password x\n",
        )
        .unwrap();
        let (_, creds) = for_index("https://pypi.example/simple", Some(&netrc)).unwrap();
        let me = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("me:secret")
        );
        assert_eq!(
            creds.unwrap().header_for("https://pypi.example/x"),
            Some(me.as_str())
        );
        let (_, creds) = for_index("https://third.example/simple", Some(&netrc)).unwrap();
        assert!(creds.is_some(), "default entry");
        let (_, none) = for_index(
            "https://pypi.example/simple",
            Some(&dir.path().join("absent")),
        )
        .unwrap();
        assert!(none.is_none());
    }

    /// uv's and pip's variables: the default index as uv reads its own first; extra
    /// indexes space-separated, `UV_INDEX` (names allowed) before the deprecated
    /// `UV_EXTRA_INDEX_URL` before pip's `PIP_EXTRA_INDEX_URL`, each URL once.
    #[test]
    fn indexes_from_uv_and_pip_variables_in_uv_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let set = env(&[
            ("PIP_INDEX_URL", "https://pip.example/simple"),
            ("UV_INDEX_URL", " "),
            ("UV_DEFAULT_INDEX", "corp=https://corp.example/simple?a=b"),
            (
                "PIP_EXTRA_INDEX_URL",
                "https://x.example/simple https://u:p@z.example/simple/",
            ),
            ("UV_EXTRA_INDEX_URL", "https://y.example/simple"),
            (
                "UV_INDEX",
                "  torch=https://torch.example/whl  https://x.example/simple\n",
            ),
        ]);
        assert_eq!(
            default_index(set),
            Some(("UV_DEFAULT_INDEX", "https://corp.example/simple?a=b".into()))
        );
        assert_eq!(
            extra_indexes(set),
            [
                ("UV_INDEX", "https://torch.example/whl".to_owned()),
                ("UV_INDEX", "https://x.example/simple".to_owned()),
                ("UV_EXTRA_INDEX_URL", "https://y.example/simple".to_owned()),
                (
                    "PIP_EXTRA_INDEX_URL",
                    "https://u:p@z.example/simple/".to_owned()
                ),
            ]
        );
        // uv's per-index variables: for a named index whose URL carries no credentials.
        let named = env(&[
            (
                "UV_INDEX",
                "internal-proxy=https://example.com/simple other=https://o:pw@other.example/s",
            ),
            ("UV_INDEX_INTERNAL_PROXY_USERNAME", "public"),
            ("UV_INDEX_INTERNAL_PROXY_PASSWORD", "ko@la"),
            ("UV_INDEX_OTHER_USERNAME", "ignored"),
            ("UV_DEFAULT_INDEX", "mirror=https://mirror.example/simple"),
            ("UV_INDEX_MIRROR_PASSWORD", "token"),
        ]);
        assert_eq!(
            extra_indexes(named),
            [
                (
                    "UV_INDEX",
                    "https://public:ko%40la@example.com/simple".to_owned()
                ),
                ("UV_INDEX", "https://o:pw@other.example/s".to_owned()),
            ]
        );
        assert_eq!(
            default_index(named),
            Some((
                "UV_DEFAULT_INDEX",
                "https://:token@mirror.example/simple".into()
            ))
        );
        // What each sends: Basic of `user:password` (an empty user with a token).
        for (url, pair) in [
            ("https://public:ko%40la@example.com/simple", "public:ko@la"),
            ("https://:token@mirror.example/simple", ":token"),
        ] {
            let (index, creds) = for_index(url, None).unwrap();
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            let file = index.join("x.whl").unwrap();
            assert_eq!(
                creds.unwrap().header_for(file.as_str()),
                Some(expected.as_str())
            );
        }
        let none = env(&[("UV_INDEX", " "), ("PIP_INDEX_URL", "")]);
        assert_eq!(default_index(none), None);
        assert!(extra_indexes(none).is_empty());
    }

    #[test]
    fn plain_http_credentials_go_to_loopback_only() {
        let err = for_index("http://u:secret@pypi.example/simple", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("plain HTTP") && !err.contains("secret"),
            "{err}"
        );
        assert!(
            for_index("http://u:p@127.0.0.1:9/simple", None)
                .unwrap()
                .1
                .is_some()
        );
        assert_eq!(redact("https://u:secret@h/simple"), "https://h/simple");
        assert_eq!(redact("not a url://u:secret@h"), "not a url://h");
    }
}
