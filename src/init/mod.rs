//! `hoist init`: a hoist.toml from the Dockerfile a project already has (or one per
//! service of its compose file, as a workspace).
//!
//! [`dockerfile`] parses the file as the Dockerfile reference defines it, [`words`]
//! substitutes ARG/ENV values, [`translate`] walks the stages into an
//! [`translate::ImagePlan`] (with `copy.rs` for `COPY`/`ADD` and [`advice`] for what each
//! `RUN` becomes), [`versions`] finds the version files, [`render`] writes the TOML
//! and [`compose`] reads a compose file's services. [`init`] ties them together and
//! writes the files, never over an existing one.

pub mod advice;
pub mod compose;
mod copy;
pub mod dockerfile;
pub mod render;
pub mod translate;
pub mod versions;
pub mod words;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use translate::{ImagePlan, Note};
use versions::VersionPlan;

/// Dockerfiles beyond this are refused (real ones are a few KiB).
const MAX_DOCKERFILE_BYTES: u64 = 1 << 20;

/// What `hoist init` can fail with; each names the file (and line).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A Dockerfile that cannot be parsed or translated.
    #[error("{}: {message}", at(path, *line))]
    Dockerfile {
        /// The Dockerfile.
        path: PathBuf,
        /// 1-based line (0: the whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A compose file that cannot be read.
    #[error("{}: {message}", at(path, *line))]
    Compose {
        /// The compose file.
        path: PathBuf,
        /// 1-based line (0: the whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A hoist.toml is already there.
    #[error("{}: already exists; hoist init does not overwrite it (move it away, or edit it by hand)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file hoist's own helpers could not read or write (the error names it).
    #[error("{source}")]
    File {
        /// The cause, naming the path.
        #[source]
        source: crate::Error,
    },
    /// The generated config failed hoist's own parser: a bug in init, caught before
    /// anything is written.
    #[error("{}: the generated config does not parse ({message}); please report this", path.display())]
    Generated {
        /// Where it would have been written.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

fn at(path: &Path, line: usize) -> String {
    if line == 0 {
        path.display().to_string()
    } else {
        format!("{}:{line}", path.display())
    }
}

/// What to translate.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The project directory: the build context, where hoist.toml is written.
    pub dir: PathBuf,
    /// The Dockerfile (default `<dir>/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// A compose file: one workspace member per service that builds.
    pub compose: Option<PathBuf>,
    /// `--build-arg K=V`: win over ARG defaults.
    pub build_args: Vec<(String, String)>,
    /// `--target STAGE`: the stage that is the image (default the last).
    pub target: Option<String>,
}

/// What `hoist init` wrote and what it could not translate.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The files written, in order (a workspace root first).
    pub written: Vec<PathBuf>,
    /// One per image.
    pub images: Vec<ImageReport>,
    /// `[version]`, when version files were found.
    pub version: Option<VersionPlan>,
    /// Compose services that became no member, and why.
    pub skipped: Vec<(String, String)>,
}

/// One image's translation.
#[derive(Debug, Serialize)]
pub struct ImageReport {
    /// The compose service, in a workspace.
    pub service: Option<String>,
    /// The Dockerfile read.
    pub dockerfile: PathBuf,
    /// The hoist.toml written.
    pub config: PathBuf,
    /// What it holds and the notes.
    pub plan: ImagePlan,
}

/// Translates and writes. Every target file is checked first: nothing is written when
/// any of them exists or any input fails.
pub fn init(options: &Options) -> Result<Report, InitError> {
    // A workspace's version files are beside the compose file, at its root.
    let root = match &options.compose {
        Some(compose) => crate::fsutil::parent_dir(compose).to_path_buf(),
        None => options.dir.clone(),
    };
    let version = versions::find(&root);
    let mut outputs: Vec<(PathBuf, String)> = Vec::new();
    let mut report = Report {
        written: Vec::new(),
        images: Vec::new(),
        version: version.clone(),
        skipped: Vec::new(),
    };
    if let Some(compose) = &options.compose {
        workspace(
            options,
            compose,
            version.as_ref(),
            &mut report,
            &mut outputs,
        )?;
    } else {
        let dockerfile = options
            .dockerfile
            .clone()
            .unwrap_or_else(|| options.dir.join("Dockerfile"));
        let plan = plan_image(&dockerfile, &options.dir, options)?;
        let config = options.dir.join("hoist.toml");
        let name = display_name(&dockerfile, &options.dir);
        let text = render::image(&plan, &name, None, version.as_ref());
        outputs.push((config.clone(), text));
        report.images.push(ImageReport {
            service: None,
            dockerfile,
            config,
            plan,
        });
    }
    for (path, text) in &outputs {
        if path.exists() {
            return Err(InitError::Exists { path: path.clone() });
        }
        crate::config::ConfigFile::parse(text).map_err(|message| InitError::Generated {
            path: path.clone(),
            message,
        })?;
    }
    for (path, text) in outputs {
        write_new(&path, text.as_bytes())?;
        report.written.push(path);
    }
    Ok(report)
}

/// Reads, parses and translates one Dockerfile whose context is `context`.
fn plan_image(
    dockerfile: &Path,
    context: &Path,
    options: &Options,
) -> Result<ImagePlan, InitError> {
    let bytes = crate::fsutil::read_bounded(dockerfile, MAX_DOCKERFILE_BYTES, "Dockerfile")
        .map_err(|source| InitError::File { source })?;
    let text = String::from_utf8(bytes).map_err(|_| InitError::Dockerfile {
        path: dockerfile.to_path_buf(),
        line: 0,
        message: "not UTF-8".into(),
    })?;
    let parsed = dockerfile::parse(dockerfile, &text)?;
    translate::translate(
        dockerfile,
        context,
        &parsed.instructions,
        parsed.escape,
        options,
    )
}

/// One member per compose service that builds; the root lists them and holds the
/// version.
fn workspace(
    options: &Options,
    compose_file: &Path,
    version: Option<&VersionPlan>,
    report: &mut Report,
    outputs: &mut Vec<(PathBuf, String)>,
) -> Result<(), InitError> {
    let root = crate::fsutil::parent_dir(compose_file).to_path_buf();
    let services = compose::read(compose_file)?;
    let mut members: Vec<String> = Vec::new();
    for service in services {
        let Some(context) = &service.context else {
            let image = service.image.unwrap_or_default();
            report.skipped.push((
                service.name,
                format!("runs the image `{image}` as it is: nothing to build"),
            ));
            continue;
        };
        let member = copy_relative(context);
        if member == "." {
            report.skipped.push((service.name, "builds from the compose file's directory, which is the workspace root and cannot hold an image: move its Dockerfile and sources into a subdirectory".into()));
            continue;
        }
        if members.contains(&member) {
            report.skipped.push((service.name, format!("builds from `{member}` like another service: one directory holds one hoist.toml")));
            continue;
        }
        let dir = root.join(&member);
        let dockerfile = dir.join(&service.dockerfile);
        let mut member_options = options.clone();
        member_options.build_args.clone_from(&service.args);
        member_options
            .build_args
            .extend(options.build_args.iter().cloned());
        member_options.build_args.reverse(); // the flag's value is found first
        member_options.target = service.target.clone().or_else(|| options.target.clone());
        let plan = plan_image(&dockerfile, &dir, &member_options)?;
        let name = service.image.as_deref().map(split_image);
        let config = dir.join("hoist.toml");
        let text = render::image(&plan, &display_name(&dockerfile, &dir), name.as_ref(), None);
        outputs.push((config.clone(), text));
        report.images.push(ImageReport {
            service: Some(service.name),
            dockerfile,
            config,
            plan,
        });
        members.push(member);
    }
    let mut notes = String::new();
    if !report.skipped.is_empty() {
        notes.push_str("# Services that are no member:\n");
        for (name, why) in &report.skipped {
            let _ = writeln!(notes, "#   {name}: {why}");
        }
    }
    let text = render::workspace(
        &members,
        &display_name(compose_file, &root),
        &notes,
        version,
    );
    outputs.insert(0, (root.join("hoist.toml"), text));
    Ok(())
}

/// A compose context as a member path (`./api/` → `api`).
fn copy_relative(context: &Path) -> String {
    let text = copy::absolute("/", &context.to_string_lossy());
    match text.trim_start_matches('/') {
        "" => ".".into(),
        rest => rest.to_string(),
    }
}

/// `ghcr.io/acme/web:1.0` → (`ghcr.io/acme/web`, [`1.0`]); a digest is dropped.
fn split_image(image: &str) -> (String, Vec<String>) {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), vec![tag.to_string()]),
        _ => (image.to_string(), Vec::new()),
    }
}

/// `path` relative to `dir` for comments (the file name when it is there).
fn display_name(path: &Path, dir: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// Writes a new file through a temporary file and a rename that never replaces one.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), InitError> {
    use std::io::Write as _;
    let io = |source| InitError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = crate::fsutil::parent_dir(path);
    let mut temp = crate::fsutil::temp_file_in(dir).map_err(|source| InitError::File { source })?;
    temp.write_all(bytes).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            InitError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io(e.error)
        }
    })?;
    Ok(())
}

/// Every note of the report, for printing: `(where, note)`.
pub fn all_notes(report: &Report) -> Vec<(String, &Note)> {
    report
        .images
        .iter()
        .flat_map(|image| {
            let source = image.dockerfile.display().to_string();
            image
                .plan
                .notes
                .iter()
                .map(move |note| (source.clone(), note))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(
            split_image("ghcr.io/acme/web:1.0"),
            ("ghcr.io/acme/web".into(), vec!["1.0".into()])
        );
        assert_eq!(
            split_image("localhost:5000/web"),
            ("localhost:5000/web".into(), vec![])
        );
        assert_eq!(copy_relative(Path::new("./api/")), "api");
        assert_eq!(copy_relative(Path::new(".")), ".");
    }
}
