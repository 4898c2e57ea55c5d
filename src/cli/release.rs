//! `hoist version`, `hoist tags` and `hoist release`: the release workflow on top of
//! `hoist::release` (version files, bump rules, tag rules, git) and the build and push
//! steps `hoist build --push` uses.

use super::progress::note;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use hoist::pipeline::Builder;
use hoist::release::git::Git;
use hoist::release::journal::Edit;
use hoist::release::settings::VersionFiles;
use hoist::release::tags;
use hoist::release::transaction::{self, GitSteps};
use hoist::release::workflow::{
    DryRun, Outcome, Project, Released, Request, bump_by_name, parse_version, tag_context,
};
use hoist_layers::BuildOptions;
use semver::Version;
use serde_json::json;

use super::CacheArgs;
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
    /// Commit the version files ([release] commit_message, default "Release v{version}").
    #[arg(long)]
    commit: bool,
    /// Add the annotated git tag ([release] tag, default v{version}) on the release
    /// commit (needs --commit).
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
    /// List only this workspace member's tags (repeatable).
    #[arg(long, short = 'p', value_name = "NAME")]
    package: Vec<String>,
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
    /// Build the new version from the checkout as it is and stop: no version file,
    /// commit, tag or push changes.
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
    /// Finish an interrupted release (from the journal in .git/hoist, else HEAD's
    /// release commit); refuses a working tree with other changes.
    #[arg(long)]
    resume: bool,
    /// Config file.
    #[arg(long, short = 'c', default_value = "hoist.toml", value_name = "FILE")]
    config: PathBuf,
    /// Push to this repository instead of [image].name (repeatable: several
    /// registries; one image only).
    #[arg(long, value_name = "REPOSITORY")]
    push_to: Vec<String>,
    /// Release only this workspace member (repeatable; default: every member).
    #[arg(long, short = 'p', value_name = "NAME")]
    package: Vec<String>,
    /// Also write the --json document to this file (for later CI steps).
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Write the released index digest to this file (`NAME DIGEST` lines for a
    /// workspace).
    #[arg(long, value_name = "FILE")]
    digest_file: Option<PathBuf>,
    /// Platforms to build, overriding [image].platforms.
    #[arg(long, value_name = "PLATFORM")]
    platform: Vec<String>,
    /// Attach no SBOM (overrides `sbom = true` in [image]).
    #[arg(long)]
    no_sbom: bool,
    /// Print each image's growth against the previous release, per platform (printed
    /// anyway, and checked, where `[budget] max_growth` is set).
    #[arg(long)]
    growth: bool,
    /// Sign every released image (index and manifests, as cosign does) and attach its
    /// signed provenance with this cosign private key, before any tag moves.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// Threads for compression and concurrent uploads; also the workspace members built
    /// at once (sharing the threads). Never changes the output.
    #[arg(long, short = 'j', value_name = "N", value_parser = super::parse_jobs)]
    jobs: Option<usize>,
    #[command(flatten)]
    cache: CacheArgs,
    /// Push every image (with its SBOMs and signatures) by digest and move no tag:
    /// one runner's part of a release split across runners (with --no-git and
    /// --metadata-file; a final `--from` job moves the tags).
    #[arg(long, requires = "no_git", conflicts_with_all = ["build_only", "from"])]
    by_digest: bool,
    /// The --metadata-file of a runner's `--by-digest` part (repeatable): build and
    /// push nothing, check that every member is there, then move every tag.
    #[arg(
        long,
        value_name = "FILE",
        requires = "no_git",
        conflicts_with_all = ["build_only", "dry_run", "package", "push_to", "platform", "sign_key", "resume"]
    )]
    from: Vec<PathBuf>,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn version(args: &VersionArgs) -> Result<()> {
    let project = Project::load(&hoist::config::locate(&args.config)?, &[])?;
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
            let name = kind
                .to_possible_value()
                .expect("every bump kind has a name");
            let asked = |current: &Version| bump_by_name(name.get_name(), pre.as_deref(), current);
            change_version(&project, &asked, write, args.json)
        }
        Some(VersionAction::Set { version, write }) => {
            let asked = |_: &Version| parse_version(version, "hoist version set");
            change_version(&project, &asked, write, args.json)
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

/// The lines a version change touches, as a unified diff.
fn diff(edit: &Edit) -> String {
    let mut out = format!("--- {0}\n+++ {0}\n", edit.path.display());
    for (i, (old, new)) in edit.before.lines().zip(edit.after.lines()).enumerate() {
        if old != new {
            let _ = write!(out, "@@ -{0} +{0} @@\n-{old}\n+{new}\n", i + 1);
        }
    }
    out
}

/// `hoist version bump|set`: write (or show) the change, committed and tagged if asked.
fn change_version(
    project: &Project,
    asked: &dyn Fn(&Version) -> hoist::release::Result<Version>,
    write: &WriteArgs,
    json: bool,
) -> Result<()> {
    let git = if write.commit || write.git_tag {
        Some(project.git()?)
    } else {
        Git::discover(&project.dir).ok()
    };
    let steps = GitSteps {
        commit: write.commit,
        tag: write.git_tag,
        notes: None,
        release: false,
    };
    let change = transaction::change_version(
        &project.settings,
        git.as_ref(),
        asked,
        (steps, write.allow_branch),
        write.dry_run,
    )?;
    let (old, new) = (&change.previous, &change.version);
    if write.dry_run {
        for edit in &change.edits {
            print!("{}", diff(edit));
        }
        note!("dry run: {old} → {new}; nothing written");
        return Ok(());
    }
    let paths: Vec<String> = change
        .edits
        .iter()
        .map(|e| e.path.display().to_string())
        .collect();
    note!("{old} → {new} in {}", paths.join(", "));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "previous": old.to_string(),
                "version": new.to_string(),
                "files": paths,
                "commit": write.commit,
                "git_tag": change.tag,
            }))?
        );
    } else {
        println!("{new}");
    }
    Ok(())
}

pub fn tags(args: &TagsArgs) -> Result<()> {
    let project = Project::load(&hoist::config::locate(&args.config)?, &args.package)?;
    let version = match &project.settings.source {
        Some(_) => Some(project.settings.read()?.version().clone()),
        None => None,
    };
    let git = Git::discover(&project.dir).ok();
    let context = tag_context(git.as_ref(), version, args.sha.clone(), args.branch.clone())?;
    let settings = &project.settings;
    let tags = tags::compute(&settings.rules, settings.latest, &context)?;
    if tags::latest_left_out(&settings.rules, settings.latest, &context) {
        note!("{}", tags::LATEST_LEFT_OUT);
    }
    let workspace = &project.workspace;
    if args.json {
        let mut document = json!({
            "version": context.version.as_ref().map(ToString::to_string),
            "sha": context.sha,
            "branch": context.branch,
            "default_branch": context.default_branch,
            "tags": tags,
        });
        if workspace.is_workspace {
            document["members"] = workspace
                .members
                .iter()
                .map(|m| json!({"name": m.name, "repositories": repositories(m), "tags": tags}))
                .collect();
        }
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else if workspace.is_workspace {
        // One line per member and tag: `NAME REPOSITORY:TAG` (the name alone without
        // a repository), ready for a loop in a CI script.
        for member in &workspace.members {
            let repositories = repositories(member);
            for tag in &tags {
                if repositories.is_empty() {
                    println!("{} {tag}", member.name);
                }
                for repository in &repositories {
                    println!("{} {repository}:{tag}", member.name);
                }
            }
        }
    } else {
        for tag in &tags {
            println!("{tag}");
        }
    }
    Ok(())
}

fn repositories(member: &hoist::workspace::Member) -> Vec<String> {
    member
        .file
        .image
        .name
        .as_ref()
        .map(hoist::config::OneOrMany::to_vec)
        .unwrap_or_default()
}

pub fn release(args: &ReleaseArgs) -> Result<()> {
    let request = Request {
        config: hoist::config::locate(&args.config)?,
        packages: args.package.clone(),
        target: args.target.clone(),
        pre: args.pre.clone(),
        message: args.message.clone(),
        dry_run: args.dry_run,
        build_only: args.build_only,
        no_git: args.no_git,
        force_tags: args.force_tags,
        allow_branch: args.allow_branch,
        branch: args.branch.clone(),
        resume: args.resume,
        push_to: args.push_to.clone(),
        platforms: args.platform.clone(),
        no_sbom: args.no_sbom,
        growth: args.growth,
        by_digest: args.by_digest,
        from: args.from.clone(),
    };
    for path in [&args.digest_file, &args.metadata_file]
        .into_iter()
        .flatten()
    {
        hoist::fsutil::check_file_target(path)
            .map_err(|e| anyhow::Error::new(e).context("--digest-file/--metadata-file"))?;
    }
    // Decrypted first: a wrong password must not cost a release commit.
    let sign_key = args
        .sign_key
        .as_deref()
        .map(super::sign::load_private_key)
        .transpose()?;
    let (cache_dir, store) = super::open_cache(args.cache.cache_dir.as_ref())?;
    let options = BuildOptions {
        threads: args.jobs.unwrap_or(0),
        use_cache: true,
    };
    // Read again by the release, which reports a config it cannot load.
    let members = hoist::workspace::load(&request.config, &request.packages)
        .map(|project| project.members_by_repository(&request.push_to))
        .unwrap_or_default();
    let transport = args
        .registry
        .pushing_transport(args.jobs.unwrap_or(0), &cache_dir, members)?;
    let observer = super::progress::observer();
    let builder = Builder::new(&store, options, &transport, observer.as_ref())?;
    let outcome =
        hoist::job::release::release(&request, &builder, sign_key.as_ref(), &mut |note| {
            note!("{note}");
        })?;
    // Each released image's part of the registry work: its repositories'.
    let (document, digests, parts) = match outcome {
        Outcome::DryRun(plan) => {
            if plan.latest_left_out {
                note!("{}", tags::LATEST_LEFT_OUT);
            }
            if !args.json {
                print_plan(&plan);
            }
            (serde_json::to_value(&*plan)?, Vec::new(), Vec::new())
        }
        Outcome::Built { version, images } => {
            note!("built v{version}; --build-only: not pushed");
            if !args.json {
                for (name, digest) in &images {
                    println!("{}", super::digest_line(name, digest, images.len()));
                }
            }
            let document = json!({
                "version": version.to_string(),
                "images": images.iter().map(|(name, digest)| json!({"name": name, "digest": digest})).collect::<Vec<_>>(),
            });
            (document, images, Vec::new())
        }
        Outcome::Released(released) => {
            if !args.json {
                print_released(&released);
            }
            let digests = released
                .images
                .iter()
                .map(|i| (i.name.clone(), i.digest.clone()))
                .collect();
            let parts = released
                .images
                .iter()
                .map(|i| i.pushes.iter().map(|p| p.repository.clone()).collect())
                .collect();
            (released_json(&released), digests, parts)
        }
    };
    let mut document = document;
    args.registry.report(&transport, &mut document, &parts)?;
    super::emit_json(&document, args.json, args.metadata_file.as_deref())?;
    if let Some(path) = &args.digest_file {
        super::write_digest_file(path, &digests)?;
    }
    Ok(())
}

fn released_json(released: &Released) -> serde_json::Value {
    let mut document = json!({
        "previous": released.previous.to_string(),
        "version": released.version.to_string(),
        "resumed": released.resumed,
        "images": released.images,
        "by_digest": released.by_digest,
        "commit": released.commit,
        "hoist": env!("CARGO_PKG_VERSION"),
        "unchanged": released
            .unchanged
            .iter()
            .map(|(name, version)| json!({"name": name, "version": version}))
            .collect::<Vec<_>>(),
    });
    // One image in one repository: its fields at the top, as before workspaces.
    if let [image] = released.images.as_slice()
        && let Some(push) = image.pushes.first()
    {
        document["digest"] = json!(image.digest);
        document["reference"] = json!(push.report.reference);
        document["tags"] = json!(push.report.tags);
        document["kept"] = push.kept_json();
    }
    document
}

fn print_released(released: &Released) {
    for image in &released.images {
        for push in &image.pushes {
            let report = &push.report;
            note!(
                "released v{} of {} to {}: {} blobs uploaded, {} mounted, {} already there",
                released.version,
                image.name,
                push.repository,
                report.blobs_uploaded,
                report.blobs_mounted,
                report.blobs_skipped
            );
            println!("{}", report.reference);
            for tag in &report.tags {
                println!("{}:{tag}", push.repository);
            }
        }
    }
}

fn print_plan(view: &DryRun) {
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
    let git = match (&view.commit, &view.tag) {
        (Some(subject), Some(tag)) => format!("commit \"{subject}\", annotated tag {tag}"),
        (None, Some(tag)) => format!("annotated tag {tag}"),
        (Some(subject), None) => format!("commit \"{subject}\""),
        (None, None) => "nothing".to_string(),
    };
    let _ = writeln!(
        out,
        "git: {git} (branch {})",
        view.branch.as_deref().unwrap_or("(detached)")
    );
    let _ = writeln!(out, "tags: {}", view.tags.join(", "));
    out.push_str("images:\n");
    for image in &view.images {
        let platforms = image.platforms.as_ref().map_or_else(
            || "every platform of the base".to_string(),
            |p| p.join(", "),
        );
        let target = if image.repositories.is_empty() {
            "(build only)".to_string()
        } else {
            image.repositories.join(", ")
        };
        let _ = writeln!(out, "  {}: {target} [{platforms}]", image.name);
    }
    out.push_str("dry run: nothing changed\n");
    print!("{out}");
}
