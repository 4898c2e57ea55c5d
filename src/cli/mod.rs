//! Command-line interface: clap definitions (raw flags) and the commands that turn
//! them into library calls. Settings are resolved in `hoist::plan`, not here.

mod build;
mod cache;
mod diff;
mod index;
mod init;
mod load;
mod login;
mod progress;
mod registry;
mod release;
mod sbom;
mod sign;
mod verify;

use hoist::registry::scheduler::{BlobCounts, RepositoryStats, RequestStats};
use progress::note;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// Daemonless, rootless OCI image assembler.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an image (one manifest per platform under an index) from hoist.toml.
    Build(Box<BuildArgs>),
    /// Write hoist.toml from ./Dockerfile (or --compose FILE), reporting each RUN.
    Init(init::InitArgs),
    /// Show an image in an OCI layout, an archive or a registry.
    Inspect(InspectArgs),
    /// Push an image from an OCI layout, an archive or another registry to a registry.
    Push(PushArgs),
    /// Mirror an image (chosen platforms, or all) from a registry into a layout.
    Pull(PullArgs),
    /// Load an image's host platform into podman's or docker's store, to run it.
    Load(LoadArgs),
    /// Point a tag at an existing image (retag, rollback) without re-uploading.
    Tag(TagArgs),
    /// Make an index from manifests already in a registry (split builds).
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Check credentials against a registry and store them in docker's config.json.
    Login(LoginArgs),
    /// Remove a registry's stored credentials.
    Logout(LogoutArgs),
    /// Compare two images: index, manifests, configs, layers, files.
    /// Exit 0 when identical, 1 when they differ, 2 on errors.
    Diff(diff::DiffArgs),
    /// Rebuild an image from local sources with its recorded inputs and compare.
    /// Exit 0 when the digest matches, 1 when it does not, 2 on errors.
    Verify(verify::VerifyArgs),
    /// Print, check, bump or set the project's version ([version] in hoist.toml).
    Version(release::VersionArgs),
    /// Print the image tags the current version and git state yield ([tags]).
    Tags(release::TagsArgs),
    /// Bump, commit, tag, build and push every computed tag, in one step.
    Release(Box<release::ReleaseArgs>),
    /// Inspect or prune the cache directory (safe while builds are using it).
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Print an image's SBOM (attached by the build) from a layout, an archive or a
    /// registry (found through its referrers).
    Sbom(sbom::SbomArgs),
    /// Key pairs for signing (cosign-compatible).
    #[command(subcommand)]
    Key(sign::KeyCommand),
    /// Sign an image in a registry (and each manifest of its index) with a cosign key,
    /// stored under the `sha256-<hex>.sig` tag as cosign does.
    Sign(sign::SignArgs),
}

/// `hoist login` flags.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: HOST[:PORT] (an https:// URL or a path after the host is ignored).
    #[arg(value_name = "REGISTRY", default_value = "docker.io")]
    registry: String,
    #[command(flatten)]
    registry_flags: RegistryArgs,
}

/// `hoist logout` flags.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT].
    #[arg(value_name = "REGISTRY", default_value = "docker.io")]
    registry: String,
}

/// `hoist pull` flags.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// HOST[:PORT]/REPO[:TAG][@DIGEST] (docker normalisation: `python` works).
    #[arg(value_name = "REFERENCE")]
    reference: String,
    /// Where to write: oci:DIR[:TAG] or oci-archive:FILE[:TAG].
    #[arg(long, short = 'o', value_name = "LOCATION")]
    output: String,
    /// Platforms to mirror (os/arch[/variant]); repeat or separate with commas.
    /// Default: all. A subset gets a new index over those platforms.
    #[arg(long, value_name = "PLATFORM")]
    platform: Vec<String>,
    /// Concurrent blob downloads.
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs, default_value_t = hoist::registry::client::DEFAULT_JOBS)]
    jobs: usize,
    /// Print `{reference, digest, output, platforms, bytes_written, registry}` as JSON
    /// instead of the digest.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `hoist tag` flags.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: HOST/REPO:TAG or HOST/REPO@DIGEST.
    #[arg(value_name = "SOURCE")]
    source: String,
    /// The new name: HOST/REPO:TAG on the same registry (`latest` if no tag), or a
    /// bare TAG: a tag in the source's repository (`hoist tag HOST/REPO:1.2.3 prod`).
    #[arg(value_name = "DESTINATION")]
    destination: String,
    /// Move tags anyway: a tag naming a version or a commit (`1.2.3`, `sha-…`) that
    /// names another image, and latest, {major}, {major}.{minor} backwards.
    #[arg(long)]
    force_tags: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
}

/// The cache directory, shared by every command that keeps blobs.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Where layers, fetched blobs and the layer cache are kept [default:
    /// $XDG_CACHE_HOME/hoist].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Every command's `--jobs N`: 1 to [`hoist_layers::MAX_THREADS`] (the library's bound on
/// compression threads, also the most concurrent transfers), so an absurd value is a
/// usage error naming the flag instead of an abort while spawning threads.
pub fn parse_jobs(text: &str) -> Result<usize, String> {
    let max = hoist_layers::MAX_THREADS;
    match text.trim().parse::<usize>() {
        Ok(jobs) if (1..=max).contains(&jobs) => Ok(jobs),
        _ => Err(format!("expected a whole number from 1 to {max}")),
    }
}

/// Registry flags shared by every command that talks to registries.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP to this registry host (loopback hosts always are).
    #[arg(long, value_name = "HOST[:PORT]")]
    insecure_registry: Vec<String>,
    /// Registry user name (with --password-stdin); wins over stored credentials.
    #[arg(long, short = 'u', value_name = "USER", requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password or token from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Trust this CA certificate (PEM) for registry TLS, besides the system's
    /// (repeatable; SSL_CERT_FILE is also read).
    #[arg(long, value_name = "FILE")]
    ca_file: Vec<PathBuf>,
    /// Never touch the network: registry images come from the cache (a tag resolves
    /// to what it resolved to when last online); fail naming what is missing.
    #[arg(long)]
    offline: bool,
    /// Requests in flight at once per registry, for all of the command's images,
    /// platforms, artifacts and tags together.
    #[arg(long, value_name = "N", value_parser = parse_jobs, default_value_t = hoist::registry::client::DEFAULT_REGISTRY_JOBS)]
    registry_jobs: usize,
    /// Print the registry requests made (by method), the bytes uploaded and each
    /// phase's time and requests on stderr at the end.
    #[arg(long, short = 'v')]
    verbose: bool,
}

impl RegistryArgs {
    /// The command's one registry transport (reads the password from stdin when asked
    /// to): every registry request of the command goes through it.
    pub fn transport(&self, jobs: usize) -> Result<hoist::registry::transport::Transport> {
        Ok(hoist::registry::transport::Transport::with_upload_progress(
            self.options(jobs)?,
            progress::upload_progress(progress::Members::new()),
        ))
    }

    /// The transport of a command that pushes: it also records, in the cache at
    /// `cache_dir`, which repositories received each blob (a later push to another
    /// repository of that registry mounts from them).
    /// `members`: the workspace member each repository is pushed for (their upload
    /// lines name it).
    pub fn pushing_transport(
        &self,
        jobs: usize,
        cache_dir: &std::path::Path,
        members: progress::Members,
    ) -> Result<hoist::registry::transport::Transport> {
        let mut options = self.options(jobs)?;
        options.pushed_records = Some(cache_dir.to_path_buf());
        Ok(hoist::registry::transport::Transport::with_upload_progress(
            options,
            progress::upload_progress(members),
        ))
    }

    /// Adds what the command asked of registries (`registry`: requests by method,
    /// bytes uploaded, blobs, phases) to its `--json` document; with `-v`, prints it.
    /// `parts` holds, for each image entry of the document (an array's elements, a
    /// release's `images`), the repositories (`HOST/REPO`) whose requests are its
    /// part: the entry gets their sum as `registry_share`. An array has no top level:
    /// each element carries the command's `registry` too (when `parts` is not empty).
    pub fn report(
        &self,
        transport: &hoist::registry::transport::Transport,
        document: &mut serde_json::Value,
        parts: &[Vec<String>],
    ) -> Result<()> {
        let stats = transport.request_stats();
        let shares: Vec<RepositoryStats> = parts
            .iter()
            .map(|mine| stats.share(|r| mine.iter().any(|m| m == r)))
            .collect();
        let registry = serde_json::to_value(&stats)?;
        let entries = match document {
            // Images built and not pushed (a workspace `build --json`) have no part:
            // their document stays the same whatever the timings.
            serde_json::Value::Array(entries) if !parts.is_empty() => {
                for entry in entries.iter_mut() {
                    entry["registry"] = registry.clone();
                }
                Some(entries)
            }
            serde_json::Value::Object(object) => {
                object.insert("registry".into(), registry);
                match object.get_mut("images") {
                    Some(serde_json::Value::Array(images)) => Some(images),
                    _ => None,
                }
            }
            _ => None,
        };
        let mut labelled = Vec::new();
        for (entry, share) in entries.into_iter().flatten().zip(shares) {
            entry["registry_share"] = serde_json::to_value(&share)?;
            let label = entry["name"].as_str().or(entry["reference"].as_str());
            labelled.push((label.unwrap_or_default().to_string(), share));
        }
        if self.verbose {
            print_registry_work(&stats, &labelled);
        }
        Ok(())
    }

    /// The resolved options; reads the password from stdin when asked to.
    pub fn options(&self, jobs: usize) -> Result<hoist::registry::client::RegistryOptions> {
        let credentials = match &self.username {
            Some(username) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .map_err(|e| anyhow::anyhow!("reading the password from stdin: {e}"))?;
                let password = password.trim_end_matches(['\r', '\n']).to_string();
                anyhow::ensure!(
                    !password.is_empty(),
                    "--password-stdin: standard input held no password"
                );
                Some(hoist::registry::auth::ExplicitCredentials {
                    username: username.clone(),
                    password,
                })
            }
            None => None,
        };
        let mut ca_files = self.ca_file.clone();
        if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
            ca_files.push(PathBuf::from(file));
        }
        Ok(hoist::registry::client::RegistryOptions {
            insecure: self.insecure_registry.clone(),
            jobs,
            registry_jobs: self.registry_jobs,
            credentials,
            ca_files,
            offline: self.offline,
            try_tls_on_loopback: !self.ca_file.is_empty(),
            pushed_records: None,
        })
    }
}

/// `hoist push` flags.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or a
    /// registry reference (copied through the cache).
    #[arg(value_name = "SOURCE")]
    source: String,
    /// HOST[:PORT]/REPO[:TAG], one or several (the same image pushed to each); without
    /// a tag (and no --tag), `latest`.
    #[arg(value_name = "DESTINATION", required = true, num_args = 1..)]
    destinations: Vec<String>,
    /// Also point this tag at the image in every destination (repeatable).
    #[arg(long, value_name = "TAG")]
    tag: Vec<String>,
    /// Also write the --json document to this file (for later CI steps).
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Concurrent blob uploads.
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs, default_value_t = hoist::registry::client::DEFAULT_JOBS)]
    jobs: usize,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print a JSON report on stdout instead of the pushed reference.
    #[arg(long)]
    json: bool,
    /// Sign the pushed image (and each of its manifests) with this cosign private
    /// key, once the tags are up.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// Move tags anyway: a tag naming a version or a commit (`1.2.3`, `sha-…`) that
    /// names another image, and latest, {major}, {major}.{minor} backwards.
    #[arg(long)]
    force_tags: bool,
}

/// `hoist build` flags.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Config file.
    #[arg(long, short = 'c', default_value = "hoist.toml", value_name = "FILE")]
    config: PathBuf,
    /// Where to write the image: oci:DIR[:TAG], oci-archive:FILE[:TAG] or
    /// docker-archive:FILE[:NAME:TAG]. Without it the image is built into the cache
    /// and only its digest is printed.
    #[arg(long, short = 'o', value_name = "LOCATION")]
    output: Option<String>,
    /// Base image, overriding [image].base (relative paths from the working directory).
    #[arg(long, value_name = "LOCATION")]
    base: Option<String>,
    /// Platforms to build (os/arch[/variant]); repeat or separate with commas.
    #[arg(long, value_name = "PLATFORM")]
    platform: Vec<String>,
    /// Set a label (KEY=VALUE), overriding [config].labels.
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Set an environment variable (KEY=VALUE), overriding [config].env.
    #[arg(long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Set the entrypoint, overriding [config].entrypoint: a JSON array
    /// (`["python3", "-m", "app"]`) or words separated by spaces; an empty value clears it.
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    entrypoint: Option<String>,
    /// Set the cmd, overriding [config].cmd (written as --entrypoint).
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    cmd: Option<String>,
    /// Set the working directory (absolute), overriding [config].workdir.
    #[arg(long, value_name = "DIR")]
    workdir: Option<String>,
    /// Set the user (user, uid, user:group or uid:gid), overriding [config].user.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Expose a port (80, 80/tcp, 53/udp), besides [config].ports (repeatable).
    #[arg(long, value_name = "PORT[/PROTO]")]
    expose: Vec<String>,
    /// Tag the image in outputs that hold tags (repeatable).
    #[arg(long, value_name = "TAG")]
    tag: Vec<String>,
    /// Manifest flavour: keep the base's, or convert to oci.
    #[arg(long, value_name = "keep|oci")]
    format: Option<String>,
    /// Layer compression: gzip or zstd.
    #[arg(long, value_name = "gzip|zstd")]
    compression: Option<String>,
    /// Compression level (gzip 1-9, zstd 1-22).
    #[arg(long, value_name = "N")]
    compression_level: Option<i32>,
    /// Threads for compression (default: every core); also the workspace members built
    /// at once (sharing the threads). Never changes the output.
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    jobs: Option<usize>,
    #[command(flatten)]
    cache: CacheArgs,
    /// Rebuild every layer instead of reusing unchanged ones (from the layer cache or
    /// the registry).
    #[arg(long)]
    no_cache: bool,
    /// Also reuse layers of this registry image (repeatable), besides those of the
    /// push target's tags and `latest`: a layer whose recorded key matches is not
    /// rebuilt. Only for builds whose outputs are pushes.
    #[arg(long, value_name = "REFERENCE")]
    cache_from: Vec<String>,
    /// Attach no SBOM (overrides `sbom = true` in [image]).
    #[arg(long)]
    no_sbom: bool,
    /// Also write the index digest to this file (with --by-digest, the pushed
    /// manifest's).
    #[arg(long, value_name = "FILE")]
    digest_file: Option<PathBuf>,
    /// Push by digest only, no tag: with one platform, its manifest alone (split
    /// builds: merge them with `hoist index create`).
    #[arg(long)]
    by_digest: bool,
    /// Print a JSON summary on stdout instead of the digest.
    #[arg(long)]
    json: bool,
    /// Push the image to [image].name, with every tag (default `latest`).
    #[arg(long)]
    push: bool,
    /// Push to this repository instead of [image].name (implies --push; repeat to push
    /// the one build to several registries).
    #[arg(long, value_name = "REFERENCE")]
    push_to: Vec<String>,
    /// Also load the host's platform image into the local engine (podman, else
    /// docker), under every name and tag, through its own `load`.
    #[arg(long)]
    load: bool,
    #[command(flatten)]
    engine: EngineArgs,
    /// Build only this workspace member (repeatable; default: every member).
    #[arg(long, short = 'p', value_name = "NAME")]
    package: Vec<String>,
    /// Also write the --json document to this file (for later CI steps).
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Sign the pushed image (and each of its manifests) with this cosign private
    /// key, once the tags are up (needs --push or --push-to).
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// Move tags anyway: a tag naming a version or a commit (`1.2.3`, `sha-…`) that
    /// names another image, and latest, {major}, {major}.{minor} backwards.
    #[arg(long)]
    force_tags: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// The local engine `--load` and `hoist load` use.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// The engine to load into: podman or docker (default: podman if it is on PATH,
    /// else docker).
    #[arg(long, value_name = "podman|docker")]
    engine: Option<hoist::engine::EngineKind>,
}

impl EngineArgs {
    /// The engine chosen, found on PATH.
    pub fn find(&self) -> Result<hoist::engine::Engine> {
        Ok(hoist::engine::find(self.engine)?)
    }
}

/// `hoist load` flags.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG] or a registry
    /// reference (HOST[:PORT]/REPO[:TAG][@DIGEST]).
    #[arg(value_name = "IMAGE")]
    location: String,
    /// Load it under this NAME:TAG (repeatable). Default: a registry reference as
    /// given (`:latest` added when it has no tag); a layout or archive needs one.
    #[arg(long, short = 't', value_name = "NAME:TAG")]
    tag: Vec<String>,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `hoist inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or a
    /// registry reference (HOST[:PORT]/REPO[:TAG][@DIGEST]).
    #[arg(value_name = "IMAGE")]
    location: String,
    /// Print the raw documents as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs a parsed command line. Comparing commands answer with their own exit code
/// (0 same, 1 different, 2 trouble, as diff(1) does); the others succeed or fail.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let outcome = dispatch(cli);
    // What follows (the error, if any) is printed with no bar left on the screen.
    progress::finish();
    outcome
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Inspect(args) => inspect(&args),
        Command::Push(args) => registry::push(&args),
        Command::Pull(args) => registry::pull(&args),
        Command::Load(args) => load::run(&args),
        Command::Tag(args) => registry::tag(&args),
        Command::Index(index::IndexCommand::Create(args)) => index::create(&args),
        Command::Login(args) => login::login(&args),
        Command::Logout(args) => login::logout(&args),
        Command::Diff(args) => return Ok(diff::run(&args)),
        Command::Verify(args) => return Ok(verify::run(&args)),
        Command::Version(args) => release::version(&args),
        Command::Tags(args) => release::tags(&args),
        Command::Release(args) => release::release(&args),
        Command::Cache(command) => cache::run(&command),
        Command::Sbom(args) => sbom::run(&args),
        Command::Key(command) => sign::key(&command),
        Command::Sign(args) => sign::sign(&args),
    }
    .map(|()| ExitCode::SUCCESS)
}

fn inspect(args: &InspectArgs) -> Result<()> {
    let location = hoist::oci::location::Location::parse(&args.location)?;
    let opened = open_documents(
        &location,
        "inspect",
        args.cache.cache_dir.as_ref(),
        &args.registry,
        None,
    )?;
    let image = &opened.image;
    let mut document = hoist::inspect::to_json(&location, image);
    // What was asked of the registry, when the image is in one (a layout or an
    // archive is read from disk: no `registry`).
    if matches!(location, hoist::oci::location::Location::Registry { .. }) {
        args.registry
            .report(&opened.transport, &mut document, &[])?;
    }
    emit_json(&document, args.json, None)?;
    if !args.json {
        print!("{}", hoist::inspect::render(&location, image));
    }
    Ok(())
}

/// An image opened for its documents (no layer fetched), with the transport that
/// reached it and the scratch directory an archive was unpacked into.
pub struct OpenedDocuments {
    /// The image.
    pub image: hoist::oci::image::Image,
    /// The command's transport.
    pub transport: hoist::registry::transport::Transport,
    _scratch: tempfile::TempDir,
}

/// Opens `location`'s documents for a command that reads them (`inspect`, `sbom`);
/// scratch is refused (`what` says for which command). Of a registry image, only the
/// manifests of `platforms` are fetched (`None`: every platform's).
pub fn open_documents(
    location: &hoist::oci::location::Location,
    what: &str,
    cache_dir: Option<&PathBuf>,
    registry: &RegistryArgs,
    platforms: Option<&[hoist::oci::platform::Platform]>,
) -> Result<OpenedDocuments> {
    anyhow::ensure!(
        *location != hoist::oci::location::Location::Scratch,
        "scratch is an empty base, not an image to {what}"
    );
    let scratch = tempfile::tempdir()?;
    let (_, store) = open_cache(cache_dir)?;
    let transport = registry.transport(0)?;
    let options = hoist::open::OpenOptions {
        scratch_dir: scratch.path(),
        store: &store,
        transport: &transport,
        platforms,
        // Documents only: no layer is fetched.
        fetch_layers: false,
    };
    let image = hoist::open::open(location, &options)?;
    Ok(OpenedDocuments {
        image,
        transport,
        _scratch: scratch,
    })
}

/// `-v`: what the command asked of registries, its phases, and each image's part.
fn print_registry_work(stats: &RequestStats, parts: &[(String, RepositoryStats)]) {
    note!(
        "registry: {}",
        work_line(
            stats.total,
            &stats.by_method,
            stats.bytes_uploaded,
            stats.blobs
        )
    );
    for (registry, bound) in &stats.in_flight_cut_to {
        note!("  {registry} answered 429: at most {bound} requests in flight to it since");
    }
    for phase in &stats.phases {
        note!(
            "  {:<10} {:>8.2} s {:>6} requests",
            phase.name,
            phase.seconds,
            phase.requests
        );
    }
    for (label, share) in parts {
        note!(
            "  {label}: {}",
            work_line(
                share.total,
                &share.by_method,
                share.bytes_uploaded,
                share.blobs
            )
        );
    }
}

/// `N requests (GET n, …), B bytes uploaded; blobs: …` for `-v`.
fn work_line(
    total: u64,
    by_method: &std::collections::BTreeMap<String, u64>,
    bytes: u64,
    blobs: BlobCounts,
) -> String {
    let methods: Vec<String> = by_method
        .iter()
        .map(|(method, n)| format!("{method} {n}"))
        .collect();
    format!(
        "{total} requests ({}), {bytes} bytes uploaded; blobs: {} uploaded, {} mounted, {} already there",
        methods.join(", "),
        blobs.uploaded,
        blobs.mounted,
        blobs.skipped
    )
}

/// Prints `document` on stdout when `--json` is given, and writes it to
/// `--metadata-file` (through a temp file) when one is: a later CI step reads it there.
pub fn emit_json(
    document: &serde_json::Value,
    json: bool,
    metadata_file: Option<&std::path::Path>,
) -> Result<()> {
    let text = serde_json::to_string_pretty(document)?;
    if let Some(path) = metadata_file {
        hoist::fsutil::write_atomically(path, format!("{text}\n").as_bytes())
            .map_err(|e| anyhow::Error::new(e).context("--metadata-file"))?;
    }
    if json {
        println!("{text}");
    }
    Ok(())
}

/// A digest as `--digest-file` and `release --build-only` print it: with its image's
/// name when there are several images.
pub fn digest_line(name: &str, digest: &str, images: usize) -> String {
    if images > 1 {
        format!("{name} {digest}")
    } else {
        digest.to_string()
    }
}

/// Writes `--digest-file`: the digest, or one `NAME DIGEST` line per image when there
/// are several.
pub fn write_digest_file(path: &std::path::Path, images: &[(String, String)]) -> Result<()> {
    let mut text = String::new();
    for (name, digest) in images {
        let _ = writeln!(text, "{}", digest_line(name, digest, images.len()));
    }
    hoist::fsutil::write_atomically(path, text.as_bytes())
        .map_err(|e| anyhow::Error::new(e).context("--digest-file"))
}

/// The cache directory given (`--cache-dir`), else the default one, opened as a blob
/// store.
pub fn open_cache(given: Option<&PathBuf>) -> Result<(PathBuf, hoist_layers::BlobStore)> {
    let cache_dir = given.cloned().unwrap_or_else(default_cache_dir);
    let store = hoist_layers::BlobStore::open_cache(&cache_dir).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "opening the cache directory {}",
            cache_dir.display()
        ))
    })?;
    Ok((cache_dir, store))
}

/// `$XDG_CACHE_HOME/hoist`, else `~/.cache/hoist`, else a directory under the system
/// temp dir (a CI runner with no home still gets a cache for this run).
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("hoist");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache").join("hoist");
    }
    std::env::temp_dir().join("hoist-cache")
}

/// `error: …` followed by each cause not already contained in the message above it
/// (library errors often include their source in their own text).
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut text = format!("error: {error}");
    let mut previous = error.to_string();
    for cause in error.chain().skip(1) {
        let message = cause.to_string();
        if !previous.contains(&message) {
            let _ = write!(text, "\n  caused by: {message}");
        }
        previous = message;
    }
    if let Some(answer) = refused_credentials(error) {
        let _ = write!(
            text,
            "\n  hint: the registry refused the credentials, or wants some: hoist uses \
             --username with --password-stdin, else HOIST_REGISTRY_USERNAME and \
             HOIST_REGISTRY_PASSWORD, else podman's auth.json, else docker's config.json, \
             where `hoist login {}` stores them (see docs/cli.md, Registry credentials)",
            answer.registry
        );
    }
    text
}

/// The registry's 401 or 403 answer somewhere in the chain: the failures whose cure
/// (where hoist looks for credentials) is not in the registry's own message. Decided
/// on the typed answer, never on the text.
fn refused_credentials(error: &anyhow::Error) -> Option<&hoist::registry::answer::RegistryAnswer> {
    use hoist::registry::answer::Meaning;
    error.chain().find_map(|cause| {
        // Library errors keep the registry's error as a source: one downcast finds it.
        cause
            .downcast_ref::<hoist::Error>()?
            .registry_answer()
            .filter(|answer| matches!(answer.meaning(), Meaning::Unauthorized | Meaning::Denied))
    })
}
