//! Local container engines (podman, docker): `build --load` and `hoist load` put the
//! host's platform image into the engine's own store through its own `load`, which
//! reads a docker archive on stdin. The archive is streamed as it is written
//! ([`stream_docker_archive`]): no temp file, so nothing to clean up.
//!
//! The engine is found on `PATH`, podman first (daemonless, like hoist), then docker;
//! `--engine` chooses. docker's CLI without a reachable daemon is found out before
//! anything is built ([`Engine::preflight`]).

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::oci::image::{Image, PlatformImage};
use crate::oci::platform::Platform;
use crate::publish::archive::stream_docker_archive;

/// How long `docker version` may take to say whether its daemon answers.
const PROBE_LIMIT: Duration = Duration::from_secs(30);
/// The most of an engine's output kept (for its message); the rest is read and dropped.
const OUTPUT_LIMIT: u64 = 64 * 1024;

/// A local container engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// podman: no daemon, the user's own store.
    Podman,
    /// docker: its daemon's store.
    Docker,
}

impl EngineKind {
    /// Every kind, in the order they are looked for.
    pub const ALL: [EngineKind; 2] = [EngineKind::Podman, EngineKind::Docker];

    /// The command's name.
    pub fn program(self) -> &'static str {
        match self {
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(text: &str) -> Result<EngineKind, String> {
        EngineKind::ALL
            .into_iter()
            .find(|kind| kind.program() == text)
            .ok_or_else(|| format!("`{text}`: expected podman or docker"))
    }
}

/// What can stop a load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No engine on `PATH`.
    #[error(
        "no container engine to load the image into: {wanted} not found on PATH; install podman or docker, or write the image with --output docker-archive:FILE"
    )]
    NotFound {
        /// What was looked for (`podman or docker`, or the one `--engine` named).
        wanted: String,
    },
    /// The engine is installed but cannot be used (docker's daemon not reachable).
    #[error("{engine} is installed but not usable: {message}")]
    Unusable {
        /// The engine.
        engine: &'static str,
        /// Why, in the engine's words, with what to do.
        message: String,
    },
    /// The image has no image for the host's platform.
    #[error(
        "the image has no {host} platform (it has: {available}): the engine runs {host} images; build it with --platform {host}"
    )]
    NoHostPlatform {
        /// The host's platform.
        host: String,
        /// The image's platforms.
        available: String,
    },
    /// There is no name to load the image under.
    #[error("{0}")]
    NoName(String),
    /// Running the engine failed.
    #[error("running {engine}: {source}")]
    Spawn {
        /// The engine.
        engine: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The engine's load failed.
    #[error("`{engine} load` failed ({status}): {message}")]
    Failed {
        /// The engine.
        engine: &'static str,
        /// Its exit status.
        status: String,
        /// Its error output.
        message: String,
    },
    /// Writing the archive failed (a blob that does not match its digest).
    #[error("streaming the image to `{engine} load`: {source}")]
    Archive {
        /// The engine.
        engine: &'static str,
        /// The error.
        source: crate::Error,
    },
}

/// Result of engine operations.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// A local engine found on `PATH`.
#[derive(Clone, Debug)]
pub struct Engine {
    /// Which engine.
    pub kind: EngineKind,
    /// Its executable.
    pub program: PathBuf,
}

/// The engine `choice` names, else podman, else docker, found on `PATH`.
pub fn find(choice: Option<EngineKind>) -> Result<Engine> {
    let kinds = match choice {
        Some(kind) => vec![kind],
        None => EngineKind::ALL.to_vec(),
    };
    kinds
        .iter()
        .find_map(|&kind| on_path(kind.program()).map(|program| Engine { kind, program }))
        .ok_or_else(|| EngineError::NotFound {
            wanted: kinds
                .iter()
                .map(|k| k.program())
                .collect::<Vec<_>>()
                .join(" or "),
        })
}

/// `program`'s executable in a directory of `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

impl Engine {
    fn name(&self) -> &'static str {
        self.kind.program()
    }

    /// Checks the engine can load before anything is built: docker's daemon must
    /// answer `docker version` (within `PROBE_LIMIT`); podman needs no daemon.
    pub fn preflight(&self) -> Result<()> {
        if self.kind == EngineKind::Podman {
            return Ok(());
        }
        let mut command = Command::new(&self.program);
        command.args(["version", "--format", "{{.Server.Version}}"]);
        let (status, _, stderr) = self.run(command, None, Some(PROBE_LIMIT))?;
        if status
            .as_ref()
            .is_some_and(std::process::ExitStatus::success)
        {
            return Ok(());
        }
        let said = first_line(&stderr);
        let why = match status {
            None => format!(
                "its daemon did not answer within {} s",
                PROBE_LIMIT.as_secs()
            ),
            Some(_) => format!("its daemon is not reachable ({said})"),
        };
        Err(EngineError::Unusable {
            engine: self.name(),
            message: format!("{why}; start it (or set DOCKER_HOST), or use --engine podman"),
        })
    }

    /// Loads the host's platform image of `image` under every one of `repo_tags`
    /// (`NAME:TAG`) through the engine's `load`, the archive streamed to its stdin.
    /// Returns the engine's report (`Loaded image: …`).
    pub fn load(&self, image: &Image, repo_tags: &[String]) -> Result<String> {
        if repo_tags.is_empty() {
            return Err(EngineError::NoName(
                "the image has no name to load it under: set [image].name in hoist.toml (or give a tag)".into(),
            ));
        }
        let platform = host_platform(image)?;
        let mut command = Command::new(&self.program);
        command.arg("load");
        let name = self.name();
        let feed = |stdin: &mut dyn std::io::Write| {
            stream_docker_archive(image, platform, repo_tags, stdin, Path::new(name))
        };
        let (status, stdout, stderr) = self.run(command, Some(&feed), None)?;
        let status = status.expect("an unbounded wait ends with a status");
        if !status.success() {
            return Err(EngineError::Failed {
                engine: name,
                status: status.to_string(),
                message: stderr.trim().to_string(),
            });
        }
        Ok(stdout.trim().to_string())
    }

    /// Runs `command`, feeding its stdin with `feed` when given (else none), its
    /// output read on threads (so neither side blocks) and kept up to
    /// [`OUTPUT_LIMIT`]; waits up to `limit` (then kills it: status `None`).
    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        mut command: Command,
        feed: Option<&dyn Fn(&mut dyn std::io::Write) -> crate::Result<u64>>,
        limit: Option<Duration>,
    ) -> Result<(Option<std::process::ExitStatus>, String, String)> {
        let name = self.name();
        let spawn = |source| EngineError::Spawn {
            engine: name,
            source,
        };
        let mut child = command
            .stdin(if feed.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let mut fed = Ok(0);
        if let (Some(feed), Some(mut stdin)) = (feed, child.stdin.take()) {
            fed = feed(&mut stdin);
            // Closing stdin ends the archive for the engine.
            drop(stdin.flush());
        }
        let status = wait(&mut child, limit).map_err(spawn)?;
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if let Err(source) = fed {
            // The engine quit while reading: its own words say more than the broken
            // pipe. Any other failure (a blob that does not match its digest) is ours.
            let broken_pipe = matches!(
                &source,
                crate::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe
            );
            let failed = status.as_ref().is_some_and(|s| !s.success());
            if broken_pipe && failed && !stderr.trim().is_empty() {
                return Err(EngineError::Failed {
                    engine: name,
                    status: status.map(|s| s.to_string()).unwrap_or_default(),
                    message: stderr.trim().to_string(),
                });
            }
            return Err(EngineError::Archive {
                engine: name,
                source,
            });
        }
        Ok((status, stdout, stderr))
    }
}

/// Reads a child's output on a thread: the first [`OUTPUT_LIMIT`] bytes kept, the rest
/// read and dropped so the child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let Some(mut pipe) = pipe else {
            return String::new();
        };
        let mut kept = Vec::new();
        let _ = pipe.by_ref().take(OUTPUT_LIMIT).read_to_end(&mut kept);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Waits for `child`, up to `limit` when given (then kills it and answers `None`).
fn wait(
    child: &mut Child,
    limit: Option<Duration>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(limit) = limit else {
        return child.wait().map(Some);
    };
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The image's platform the host runs.
fn host_platform(image: &Image) -> Result<&PlatformImage> {
    let host = Platform::host();
    image
        .platforms
        .iter()
        .find(|p| p.platform.satisfies(&host))
        .ok_or_else(|| EngineError::NoHostPlatform {
            host: host.to_string(),
            available: image.platform_names(),
        })
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_named_and_parsed() {
        assert_eq!("podman".parse::<EngineKind>(), Ok(EngineKind::Podman));
        assert_eq!("docker".parse::<EngineKind>(), Ok(EngineKind::Docker));
        assert!(
            "containerd"
                .parse::<EngineKind>()
                .unwrap_err()
                .contains("podman or docker")
        );
    }
}
