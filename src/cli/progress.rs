//! Progress on stderr: bars on a terminal, one plain line per layer (and per uploaded
//! blob) in CI (`CI` set) or when stderr is not a terminal. Stdout stays for results
//! (the digest, or `--json`).
//!
//! Every line the CLI prints on stderr goes through [`note_line`] (the [`note!`] macro):
//! with bars, the process's one [`MultiProgress`] clears them, prints the line and
//! draws them again below it. A line printed past it, or a second `MultiProgress`
//! drawing on the same terminal, would be overwritten by the next redraw or leave a
//! stale bar line on the screen.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use hoist::assemble::Observer;
use hoist::inspect::human_bytes;
use hoist::registry::progress::{BlobProgress, UploadProgress};
use hoist_layers::{BuiltLayer, Digest, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether stderr gets bars: a terminal, and not CI.
fn bars_wanted() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    !ci && std::io::stderr().is_terminal()
}

/// The process's bars, when stderr gets them: one for every bar of the command, so
/// that each redraw knows every line drawn.
fn bars() -> Option<&'static MultiProgress> {
    static BARS: OnceLock<Option<MultiProgress>> = OnceLock::new();
    BARS.get_or_init(|| bars_wanted().then(MultiProgress::new))
        .as_ref()
}

/// Prints `line` on stderr, above the bars when they are drawn.
pub fn note_line(line: impl std::fmt::Display) {
    match bars() {
        Some(multi) => multi.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// Takes the bars off the screen for good once the command is over: a failed command
/// may leave a task behind that still holds a bar (an upload on a blocking thread),
/// and its error is printed next.
pub fn finish() {
    if let Some(multi) = bars() {
        let _ = multi.clear();
        multi.set_draw_target(ProgressDrawTarget::hidden());
    }
}

/// `eprintln!` through [`note_line`]: every line the CLI prints on stderr.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::cli::progress::note_line(format_args!($($arg)*))
    };
}
pub(crate) use note;

/// Chooses bars or plain lines for this process's stderr.
pub fn observer() -> Box<dyn Observer> {
    match bars() {
        Some(multi) => Box::new(Bars(multi)),
        None => Box::new(Lines),
    }
}

/// Upload progress, bars or lines as [`observer`] chooses; a line about a repository
/// in `members` (`HOST/REPO` → a workspace member) starts with the member's name.
pub fn upload_progress(members: Members) -> Arc<dyn UploadProgress> {
    match bars() {
        Some(multi) => Arc::new(UploadBars(multi, members)),
        None => Arc::new(UploadLines(members)),
    }
}

/// The workspace member each repository receives pushes for.
pub type Members = BTreeMap<String, String>;

/// `NAME: ` when `repository` is a workspace member's, else nothing.
fn member_prefix(members: &Members, repository: &str) -> String {
    members
        .get(repository)
        .map_or_else(String::new, |name| format!("{name}: "))
}

/// One line per blob once the registry has it.
struct UploadLines(Members);

struct UploadLine {
    line: String,
}

impl UploadProgress for UploadLines {
    fn blob_started(&self, repository: &str, digest: &Digest, size: u64) -> Arc<dyn BlobProgress> {
        Arc::new(UploadLine {
            line: uploaded_line(&self.0, repository, digest, size),
        })
    }
}

impl BlobProgress for UploadLine {
    fn finished(&self) {
        note_line(&self.line);
    }
}

fn uploaded_line(members: &Members, repository: &str, digest: &Digest, size: u64) -> String {
    format!(
        "{}uploaded {digest} ({}) to {repository}",
        member_prefix(members, repository),
        human_bytes(size)
    )
}

/// A bar per blob being uploaded (several go up at once).
struct UploadBars(&'static MultiProgress, Members);

impl UploadProgress for UploadBars {
    fn blob_started(&self, repository: &str, digest: &Digest, size: u64) -> Arc<dyn BlobProgress> {
        let short = digest.as_str().get(..19).unwrap_or(digest.as_str());
        let prefix = member_prefix(&self.1, repository);
        let bar = self
            .0
            .add(ProgressBar::new(size).with_message(format!("{prefix}upload {short}")));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Arc::new(UploadBar {
            bar,
            line: uploaded_line(&self.1, repository, digest, size),
        })
    }
}

struct UploadBar {
    bar: ProgressBar,
    line: String,
}

impl BlobProgress for UploadBar {
    fn attempt(&self) {
        self.bar.set_position(0);
    }
    fn sent(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn finished(&self) {
        self.bar.finish_and_clear();
        note_line(&self.line);
    }
}

/// An upload that ended unfinished (it failed) takes its bar away too.
impl Drop for UploadBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

struct Lines;

impl Observer for Lines {
    fn layer_started(&self, _label: &str) -> Box<dyn Progress + '_> {
        Box::new(Warnings)
    }

    fn layer_finished(&self, label: &str, layer: &BuiltLayer) {
        note_line(finished_line(label, layer));
    }
}

fn finished_line(label: &str, layer: &BuiltLayer) -> String {
    format!(
        "{label}: {} ({}{})",
        layer.digest,
        human_bytes(layer.size),
        if layer.from_cache {
            ", cached"
        } else if layer.known {
            ", reused from the registry"
        } else {
            ""
        }
    )
}

/// Only says what the user must know: a cached blob failed its check.
struct Warnings;

impl Progress for Warnings {
    fn cached_blob_rejected(&self, error: &hoist_layers::Error) {
        warn_rejected(error);
    }
}

fn warn_rejected(error: &hoist_layers::Error) {
    note!("warning: the layer cache held a bad blob, deleted and rebuilt: {error}");
}

/// A bar per layer being built (a workspace's members build several at once).
struct Bars(&'static MultiProgress);

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total_bytes: u64) {
        self.0.set_length(total_bytes);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn cached_blob_rejected(&self, error: &hoist_layers::Error) {
        warn_rejected(error);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl Observer for Bars {
    fn layer_started(&self, label: &str) -> Box<dyn Progress + '_> {
        let bar = self
            .0
            .add(ProgressBar::new(0).with_message(label.to_string()));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Box::new(Bar(bar))
    }

    fn layer_finished(&self, label: &str, layer: &BuiltLayer) {
        note_line(finished_line(label, layer));
    }
}
