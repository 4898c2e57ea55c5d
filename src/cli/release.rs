//! `hoist version`, `hoist tags` and `hoist release`: the release workflow on top of
//! `hoist::release` (version files, bump rules, tag rules, git) and the build and push
//! steps `hoist build --push` uses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use hoist::assemble::{Image, assemble};
use hoist::config::ConfigFile;
use hoist::plan::{Overrides, Plan, resolve};
use hoist::registry::push::push;
use hoist::registry::{block_on, reference};
use hoist::release::bump::{Bump, PreLabel, bump};
use hoist::release::forward::{check_forward, tag_states_blocking};
use hoist::release::git::Git;
use hoist::release::labels::{self, oci_labels};
use hoist::release::settings::{ReleaseSettings, VersionFiles};
use hoist::release::tags::{self, TagContext};
use hoist::release::version_file::VersionFile;
use hoist_layers::BuildOptions;
use semver::Version;
use serde_json::json;

use super::RegistryArgs;

/// `hoist version` flags.
#[derive(Debug, Args)]
pub struct VersionArgs {
    #[command(subcommand)]
    action: Option<VersionAction>,
    /// Config file (its [version] section names the version files).
    #[arg(
        long,
        short = 'c',
        default_value = "hoist.toml",
        value_name = "FILE",
        global = true
    )]
    config: PathBuf,
    /// Print JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum VersionAction {
    /// Fail unless every sync file (and --tag) agrees with the source's version.
    Check {
        /// A git tag that must name the version (`v1.2.3`, `1.2.3`, `refs/tags/v1.2.3`).
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
    },
    /// Bump the version in the source and every sync file.
    Bump {
        /// Which part to bump.
        #[arg(value_enum)]
        kind: BumpKind,
        /// Pre-release label for `pre` [default: the current one, else alpha].
        #[arg(long, value_name = "alpha|beta|rc")]
        pre: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Set the version in the source and every sync file.
    Set {
        /// The new version (SemVer 2.0.0; a leading `v` is accepted).
        #[arg(value_name = "VERSION")]
        version: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// What to bump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BumpKind {
    Major,
    Minor,
    Patch,
    Pre,
    Release,
}

/// How a version change is written.
#[derive(Debug, Args)]
struct WriteArgs {
    /// Show the change as a diff; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Commit the version files as "Release v{version}".
    #[arg(long)]
    commit: bool,
    /// Add the annotated tag v{version} on the release commit (needs --commit).
    #[arg(long, requires = "commit")]
    git_tag: bool,
    /// Allow --commit / --git-tag on a branch other than the default one.
    #[arg(long)]
    allow_branch: bool,
}

/// `hoist tags` flags.
#[derive(Debug, Args)]
pub struct TagsArgs {
    /// Config file ([version] and [tags]).
    #[arg(long, short = 'c', default_value = "hoist.toml", value_name = "FILE")]
    config: PathBuf,
    /// The commit, instead of git's HEAD (CI).
    #[arg(long, value_name = "SHA")]
    sha: Option<String>,
    /// The branch, instead of git's (CI checkouts are often a detached HEAD).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// `hoist release` flags.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// patch, minor, major, pre, release (finish a pre-release), or a version X.Y.Z.
    #[arg(value_name = "BUMP|VERSION", required_unless_present = "resume")]
    target: Option<String>,
    /// Pre-release label for `pre` [default: the current one, else alpha].
    #[arg(long, value_name = "alpha|beta|rc")]
    pre: Option<String>,
    /// Release notes: the message of the annotated tag.
    #[arg(long, short = 'm', value_name = "NOTES")]
    message: Option<String>,
    /// Print the whole plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stop after the build (no push).
    #[arg(long)]
    build_only: bool,
    /// Skip the commit and the tag.
    #[arg(long)]
    no_git: bool,
    /// Move latest, {major} and {major}.{minor} even when they name a higher version
    /// (by default such a tag is kept where it is).
    #[arg(long)]
    force_tags: bool,
    /// Allow releasing from a branch other than the default one.
    #[arg(long)]
    allow_branch: bool,
    /// The branch, instead of git's: CI checks out a detached HEAD (e.g.
    /// `--branch "$GITHUB_REF_NAME"`); used for the default-branch check and tag rules.
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// Finish a release whose push failed: HEAD must be its release commit.
    #[arg(long)]
    resume: bool,
    /// Config file.
    #[arg(long, short = 'c', default_value = "hoist.toml", value_name = "FILE")]
    config: PathBuf,
    /// Push to this repository instead of [image].name.
    #[arg(long, value_name = "REPOSITORY")]
    push_to: Option<String>,
    /// Platforms to build, overriding [image].platforms.
    #[arg(long, value_name = "PLATFORM")]
    platform: Vec<String>,
    /// Threads for compression and concurrent uploads.
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Layer store and cache [default: $XDG_CACHE_HOME/hoist].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// The config, its release settings and the directory it is in.
struct Project {
    config: PathBuf,
    file: ConfigFile,
    settings: ReleaseSettings,
    dir: PathBuf,
}

impl Project {
    fn load(config: &Path) -> Result<Project> {
        let file = ConfigFile::load(config)?;
        let settings = ReleaseSettings::resolve(config, &file)?;
        let dir = config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Ok(Project {
            config: config.to_path_buf(),
            file,
            settings,
            dir,
        })
    }

    fn git(&self) -> Result<Git> {
        Git::discover(&self.dir)
            .with_context(|| format!("{} is not in a git checkout", self.dir.display()))
    }
}

pub fn version(args: &VersionArgs) -> Result<()> {
    let project = Project::load(&args.config)?;
    let files = project.settings.read()?;
    match &args.action {
        None => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&files_json(&files))?);
            } else {
                println!("{}", files.version());
            }
            Ok(())
        }
        Some(VersionAction::Check { tag }) => check(&files, tag.as_deref(), args.json),
        Some(VersionAction::Bump { kind, pre, write }) => {
            let bump_kind = bump_of(*kind, pre.as_deref(), files.version())?;
            let new = bump(files.version(), bump_kind)?;
            change_version(&project, &files, &new, write, args.json)
        }
        Some(VersionAction::Set { version, write }) => {
            let new = parse_version(version, "hoist version set")?;
            change_version(&project, &files, &new, write, args.json)
        }
    }
}

fn files_json(files: &VersionFiles) -> serde_json::Value {
    json!({
        "version": files.version().to_string(),
        "files": files.all().map(|f| json!({
            "path": f.path.display().to_string(),
            "line": f.line,
            "version": f.version.to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn check(files: &VersionFiles, tag: Option<&str>, json: bool) -> Result<()> {
    let mut problems = Vec::new();
    for file in files.disagreeing() {
        problems.push(format!(
            "{}:{} has {} (the source {}:{} has {})",
            file.path.display(),
            file.line,
            file.version,
            files.source.path.display(),
            files.source.line,
            files.version()
        ));
    }
    if let Some(tag) = tag {
        let name = tag.strip_prefix("refs/tags/").unwrap_or(tag);
        match Version::parse(name.strip_prefix('v').unwrap_or(name)) {
            Ok(v) if &v == files.version() => {}
            Ok(v) => problems.push(format!(
                "the tag {tag} names {v}, but {}:{} has {}",
                files.source.path.display(),
                files.source.line,
                files.version()
            )),
            Err(e) => problems.push(format!("the tag {tag} is not a SemVer version: {e}")),
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": problems.is_empty(),
                "problems": problems,
                "version": files.version().to_string(),
            }))?
        );
    }
    if !problems.is_empty() {
        bail!("version check failed:\n  {}", problems.join("\n  "));
    }
    if !json {
        println!("{}", files.version());
    }
    Ok(())
}

fn parse_version(text: &str, what: &str) -> Result<Version> {
    Version::parse(text.strip_prefix('v').unwrap_or(text))
        .with_context(|| format!("{what}: `{text}` is not a SemVer 2.0.0 version (X.Y.Z[-PRE])"))
}

fn bump_of(kind: BumpKind, pre: Option<&str>, current: &Version) -> Result<Bump> {
    if pre.is_some() && kind != BumpKind::Pre {
        bail!("--pre goes with `pre` only");
    }
    Ok(match kind {
        BumpKind::Major => Bump::Major,
        BumpKind::Minor => Bump::Minor,
        BumpKind::Patch => Bump::Patch,
        BumpKind::Release => Bump::Release,
        BumpKind::Pre => Bump::Pre(pre_label(pre, current)?),
    })
}

/// `--pre`, else the current pre-release's label, else alpha.
fn pre_label(pre: Option<&str>, current: &Version) -> Result<PreLabel> {
    match pre {
        Some(label) => label
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--pre {e}")),
        None => Ok(current
            .pre
            .as_str()
            .split('.')
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(PreLabel::Alpha)),
    }
}

/// The lines a version change touches, as a unified diff.
fn diff(file: &VersionFile, new_text: &str) -> String {
    let mut out = format!("--- {0}\n+++ {0}\n", file.path.display());
    for (i, (old, new)) in file.text.lines().zip(new_text.lines()).enumerate() {
        if old != new {
            let _ = write!(out, "@@ -{0} +{0} @@\n-{old}\n+{new}\n", i + 1);
        }
    }
    out
}

/// `hoist version bump|set`: write (or show) the change, then commit and tag if asked.
fn change_version(
    project: &Project,
    files: &VersionFiles,
    new: &Version,
    write: &WriteArgs,
    json: bool,
) -> Result<()> {
    let old = files.version().clone();
    let rendered = files.render(new);
    let git = if write.commit || write.git_tag {
        let git = project.git()?;
        check_git(&git, files, write.allow_branch, None, &format!("v{new}"))?;
        Some(git)
    } else {
        None
    };
    if write.dry_run {
        for (file, (_, text)) in files.all().zip(&rendered) {
            print!("{}", diff(file, text));
        }
        eprintln!("dry run: {old} → {new}; nothing written");
        return Ok(());
    }
    files.write(new)?;
    let paths: Vec<PathBuf> = files.all().map(|f| f.path.clone()).collect();
    if let Some(git) = &git {
        if write.commit {
            git.commit(&paths, &format!("Release v{new}"))?;
        }
        if write.git_tag {
            git.tag_annotated(&format!("v{new}"), &format!("Release v{new}"))?;
        }
    }
    eprintln!(
        "{old} → {new} in {}",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "previous": old.to_string(),
                "version": new.to_string(),
                "files": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "commit": write.commit,
                "git_tag": write.git_tag.then(|| format!("v{new}")),
            }))?
        );
    } else {
        println!("{new}");
    }
    Ok(())
}

/// Refuses a commit or tag on a dirty tree (version files aside), on a branch other
/// than the default one (unless allowed), or when the tag exists. Returns the branch.
fn check_git(
    git: &Git,
    files: &VersionFiles,
    allow_branch: bool,
    branch: Option<&str>,
    tag: &str,
) -> Result<Option<String>> {
    let version_paths: Vec<PathBuf> = files
        .all()
        .map(|f| std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone()))
        .collect();
    let dirty: Vec<String> = git
        .dirty_files()?
        .into_iter()
        .filter(|relative| {
            let path = git.root.join(relative);
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            !version_paths.contains(&path)
        })
        .collect();
    if !dirty.is_empty() {
        bail!(
            "the working tree has changes besides the version files: {} (commit or stash them first)",
            dirty.join(", ")
        );
    }
    let branch = match branch {
        Some(given) => Some(given.to_string()),
        None => git.branch()?,
    };
    if !allow_branch {
        let default = git.default_branch();
        if branch.is_none() || branch != default {
            bail!(
                "releases are made from the default branch ({}), not {}; pass --allow-branch to release from here",
                default
                    .as_deref()
                    .unwrap_or("unknown: no origin/HEAD, main or master"),
                branch
                    .as_deref()
                    .map_or("a detached HEAD".to_string(), |b| format!("branch {b}"))
            );
        }
    }
    if git.tag_commit(tag).is_some() {
        bail!("the git tag {tag} exists already");
    }
    Ok(branch)
}

pub fn tags(args: &TagsArgs) -> Result<()> {
    let project = Project::load(&args.config)?;
    let version = match &project.settings.source {
        Some(_) => Some(project.settings.read()?.version().clone()),
        None => None,
    };
    let git = Git::discover(&project.dir).ok();
    let context = tag_context(git.as_ref(), version, args.sha.clone(), args.branch.clone())?;
    let tags = tags::compute(&project.settings.rules, project.settings.latest, &context)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "version": context.version.as_ref().map(ToString::to_string),
                "sha": context.sha,
                "branch": context.branch,
                "default_branch": context.default_branch,
                "tags": tags,
            }))?
        );
    } else {
        for tag in &tags {
            println!("{tag}");
        }
    }
    Ok(())
}

fn tag_context(
    git: Option<&Git>,
    version: Option<Version>,
    sha: Option<String>,
    branch: Option<String>,
) -> Result<TagContext> {
    let sha = match sha {
        Some(sha) => Some(sha),
        None => git.map(Git::head_sha).transpose()?,
    };
    let branch = match branch {
        Some(branch) => Some(branch),
        None => git.map(Git::branch).transpose()?.flatten(),
    };
    Ok(TagContext {
        version,
        sha,
        branch,
        default_branch: git.and_then(Git::default_branch),
    })
}

/// The OCI labels and annotations of a versioned build (`hoist build` and `hoist
/// release`), added to the plan where the user set none; no-op without [version].
pub fn add_release_labels(
    config: &Path,
    file: &ConfigFile,
    plan: &mut Plan,
    version: Option<&Version>,
) -> Result<()> {
    if file.version.is_none() {
        return Ok(());
    }
    let settings = ReleaseSettings::resolve(config, file)?;
    // The plan's epoch is SOURCE_DATE_EPOCH, or 0 when unset, which means: date the
    // image by its commit instead. Taken from the plan, not the environment, so that
    // `hoist verify` (which replays the recorded epoch) labels the rebuild the same.
    let epoch = (plan.epoch != 0).then_some(plan.epoch);
    let info = labels::gather(&settings, version, epoch)?;
    labels::apply(plan, &oci_labels(&info));
    Ok(())
}

pub fn release(args: &ReleaseArgs) -> Result<()> {
    let project = Project::load(&args.config)?;
    let files = project.settings.read()?;
    let disagreeing = files.disagreeing();
    if !disagreeing.is_empty() {
        bail!(
            "the version files disagree ({}); run `hoist version check` and fix them first",
            disagreeing
                .iter()
                .map(|f| format!("{}:{} has {}", f.path.display(), f.line, f.version))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let git = if args.no_git {
        Git::discover(&project.dir).ok()
    } else {
        Some(project.git()?)
    };
    let current = files.version().clone();
    // One transport for the tag lookups, the build's base and the push.
    let registry =
        hoist::registry::transport::Transport::new(args.registry.options(args.jobs.unwrap_or(0))?);
    let target = if args.build_only {
        None
    } else {
        Some(push_target(args, &project)?)
    };

    // A release whose push failed left HEAD on its commit and tag: finish it.
    let resumable = !args.no_git
        && git
            .as_ref()
            .is_some_and(|g| is_release_head(g, &current).unwrap_or(false));
    let resume = if args.resume {
        if !resumable {
            bail!(
                "--resume: nothing to resume: HEAD is not the release commit of v{current} (\"Release v{current}\" tagged v{current})"
            );
        }
        true
    } else if resumable && let Some(target) = &target {
        // Resumed only when the registry lacks the version's tag; after a complete
        // release a new bump is what the user asks for.
        let client_states = tag_states_blocking(target, &[current.to_string()], &registry)
            .with_context(|| {
                format!(
                    "HEAD is the release commit of v{current}: checking whether {} has its tag {current}",
                    repository_name(target)
                )
            })?;
        client_states.iter().any(|s| s.digest.is_none())
    } else {
        false
    };

    let new = if resume {
        current.clone()
    } else {
        let wanted = args.target.as_deref().unwrap_or_default();
        match wanted {
            "major" | "minor" | "patch" | "pre" | "release" => {
                let kind = BumpKind::from_str(wanted, true).map_err(|e| anyhow::anyhow!(e))?;
                bump(&current, bump_of(kind, args.pre.as_deref(), &current)?)?
            }
            _ => parse_version(wanted, "hoist release")
                .context("expected patch, minor, major, pre, release or a version such as 1.2.3")?,
        }
    };
    let changes_files = new != current;
    let make_commit = !args.no_git && !resume && changes_files;
    let make_tag = !args.no_git && !resume;
    if !resume && !args.no_git {
        let git = git.as_ref().expect("a checkout unless --no-git");
        if !changes_files {
            bail!(
                "the version is {current} already; to push it again after a failed release, run `hoist release --resume` on its release commit (or `hoist release {current} --no-git`)"
            );
        }
        check_git(
            git,
            &files,
            args.allow_branch,
            args.branch.as_deref(),
            &format!("v{new}"),
        )?;
    }

    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let overrides = Overrides {
        platforms: args.platform.clone(),
        ..Overrides::default()
    };
    let mut plan = resolve(&project.config, &project.file, &overrides, epoch.as_deref())?;
    let context_now = tag_context(git.as_ref(), Some(new.clone()), None, args.branch.clone())?;
    let release_tags = tags::compute(
        &project.settings.rules,
        project.settings.latest,
        &context_now,
    )?;

    if args.dry_run {
        print_plan(&PlanView {
            files: &files,
            old: &current,
            new: &new,
            resume,
            commit: make_commit,
            tag: make_tag,
            branch: context_now.branch.as_deref(),
            tags: &release_tags,
            plan: &plan,
            target: target.as_ref().map(repository_name),
        });
        return Ok(());
    }

    if resume {
        eprintln!("resuming the release of v{new}: HEAD is its release commit");
    } else {
        if changes_files {
            files.write(&new)?;
            eprintln!("{current} → {new}");
        }
        if let Some(git) = git.as_ref().filter(|_| !args.no_git) {
            let paths: Vec<PathBuf> = files.all().map(|f| f.path.clone()).collect();
            if make_commit {
                git.commit(&paths, &format!("Release v{new}"))?;
            }
            let notes = args
                .message
                .clone()
                .unwrap_or_else(|| format!("Release v{new}"));
            git.tag_annotated(&format!("v{new}"), &notes)?;
            eprintln!("committed \"Release v{new}\" and tagged v{new}");
        }
    }
    // The commit just made is what {sha} rules and the revision label name.
    let context = tag_context(git.as_ref(), Some(new.clone()), None, args.branch.clone())?;
    let release_tags = tags::compute(&project.settings.rules, project.settings.latest, &context)?;
    add_release_labels(&project.config, &project.file, &mut plan, Some(&new))?;

    let resume_hint = if args.no_git {
        format!("run `hoist release {new} --no-git` to try again")
    } else {
        format!(
            "the release commit and tag v{new} are made; run `hoist release --resume` (or the same `hoist release` command) to build and push what is missing"
        )
    };
    let image = build(args, &plan, &registry)
        .with_context(|| format!("building v{new} failed; {resume_hint}"))?;
    let Some(target) = target else {
        eprintln!("built v{new}; --build-only: not pushed");
        println!("{}", image.descriptor.digest);
        return Ok(());
    };

    // Tags only move forward: one that names a higher version stays where it is.
    let mut push_tags = release_tags.clone();
    let mut kept = Vec::new();
    if !args.force_tags {
        let moving = tags::moving_tags(&project.settings.rules, project.settings.latest, &context)?;
        let states = tag_states_blocking(&target, &moving, &registry).with_context(|| {
            format!(
                "checking the tags of {}; {resume_hint}",
                repository_name(&target)
            )
        })?;
        let check = check_forward(&states, &new);
        for tag in &check.unknown {
            eprintln!(
                "warning: the image tag {tag} names an image whose version cannot be told; moving it to {new}"
            );
        }
        for (tag, current) in &check.kept {
            eprintln!(
                "kept tag {tag} on {current}: {new} is lower and tags only move forward (--force-tags moves it)"
            );
            push_tags.retain(|t| t != tag);
        }
        kept = check.kept;
    }
    let report = block_on(push(&image, &target, &push_tags, &registry)).with_context(|| {
        format!(
            "pushing v{new} to {} failed; {resume_hint}",
            repository_name(&target)
        )
    })?;
    eprintln!(
        "released v{new}: {} blobs uploaded, {} already there",
        report.blobs_uploaded, report.blobs_skipped
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "previous": current.to_string(),
                "version": new.to_string(),
                "resumed": resume,
                "digest": report.digest,
                "reference": report.reference,
                "tags": report.tags,
                "kept": kept.iter().map(|(tag, version)| json!({"tag": tag, "version": version.to_string()})).collect::<Vec<_>>(),
            }))?
        );
    } else {
        println!("{}", report.reference);
        for tag in &report.tags {
            println!("{}:{tag}", repository_name(&target));
        }
    }
    Ok(())
}

/// `HOST/REPO`, as the user wrote it (no `:latest`).
fn repository_name(target: &oci_spec::distribution::Reference) -> String {
    format!("{}/{}", target.registry(), target.repository())
}

/// HEAD is `Release vX`, tagged `vX`, and X is the version in the files.
fn is_release_head(git: &Git, current: &Version) -> Result<bool> {
    let head = git.head_sha()?;
    Ok(
        git.tag_commit(&format!("v{current}")).as_deref() == Some(head.as_str())
            && git.head_subject()? == format!("Release v{current}"),
    )
}

fn push_target(args: &ReleaseArgs, project: &Project) -> Result<oci_spec::distribution::Reference> {
    let input = match (&args.push_to, &project.file.image.name) {
        (Some(to), _) => to.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => bail!(
            "hoist release pushes to image.name: set it in {} or pass --push-to (or --build-only)",
            project.config.display()
        ),
    };
    anyhow::ensure!(
        !args.registry.offline,
        "--offline and hoist release cannot go together: pushing needs the network (use --build-only)"
    );
    if reference::explicit_tag(&input).is_some() {
        bail!("`{input}`: name the repository only; the tags come from [tags].rules");
    }
    Ok(reference::parse(&input)?)
}

fn build(
    args: &ReleaseArgs,
    plan: &Plan,
    registry: &hoist::registry::transport::Transport,
) -> Result<Image> {
    let (_, store) = super::open_cache(args.cache_dir.as_ref())?;
    let options = BuildOptions {
        threads: args.jobs.unwrap_or(0),
        use_cache: true,
    };
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let observer = super::progress::observer();
    Ok(assemble(
        plan,
        &store,
        &options,
        registry,
        scratch.path(),
        observer.as_ref(),
    )?)
}

struct PlanView<'a> {
    files: &'a VersionFiles,
    old: &'a Version,
    new: &'a Version,
    resume: bool,
    commit: bool,
    tag: bool,
    branch: Option<&'a str>,
    tags: &'a [String],
    plan: &'a Plan,
    target: Option<String>,
}

fn print_plan(view: &PlanView) {
    let mut out = String::new();
    if view.resume {
        let _ = writeln!(
            out,
            "resume the release of {} (HEAD is its release commit)",
            view.new
        );
    } else {
        let _ = writeln!(out, "version: {} → {}", view.old, view.new);
        out.push_str("files:\n");
        for file in view.files.all() {
            let _ = writeln!(
                out,
                "  {}:{}  {} → {}",
                file.path.display(),
                file.line,
                file.version,
                view.new
            );
        }
    }
    let git = match (view.commit, view.tag) {
        (true, true) => format!("commit \"Release v{0}\", annotated tag v{0}", view.new),
        (false, true) => format!("annotated tag v{}", view.new),
        _ => "nothing".to_string(),
    };
    let _ = writeln!(
        out,
        "git: {git} (branch {})",
        view.branch.unwrap_or("(detached)")
    );
    let _ = writeln!(out, "tags: {}", view.tags.join(", "));
    let platforms = view.plan.platforms.as_ref().map_or_else(
        || "every platform of the base".to_string(),
        |p| {
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let _ = writeln!(out, "platforms: {platforms}");
    let _ = writeln!(
        out,
        "target: {}",
        view.target.as_deref().unwrap_or("(build only)")
    );
    out.push_str("dry run: nothing changed\n");
    print!("{out}");
}
