//! A version change as a transaction: the version files, `git add`, the release commit
//! and its git tag, each step recorded in the [`journal`](super::journal) before the
//! next one starts.
//!
//! - **Begin**: the journal records the old and new version, the commit message, the
//!   tag, HEAD, and every file's text before and after (version files are small).
//! - **Write**: temporary files written and synced, then renamed ([`write_all`]). A run
//!   killed between two renames leaves the journal at `editing`; the next run writes
//!   the texts the journal holds (completing the set) and sweeps the temporary files.
//! - **Stage, commit, tag**: each is checked for having happened already (a run killed
//!   after `git commit` returned but before the journal said so), then made. A refused
//!   commit (a commit-msg hook) puts the files back as they were, unstages them and
//!   forgets the journal: nothing changed.
//! - **Finish**: `hoist release` removes the journal once every image is pushed and
//!   tagged; a plain version change once its files are written.
//!
//! The same command run again finishes the journal's version (never bumps again); a
//! command asking for another version is refused with the way to finish the first.

use std::path::PathBuf;

use semver::Version;

use super::Result;
use super::git::Git;
use super::journal::{Edit, Journal, Record, Step, kill_point};
use super::settings::{ReleaseSettings, VersionFiles, same_file};
use super::steps::{parse_version, refused, step};
use super::version_file::write_all;

/// What a version change does in git.
#[derive(Clone, Copy, Debug, Default)]
pub struct GitSteps<'a> {
    /// Make the release commit.
    pub commit: bool,
    /// Make the annotated git tag.
    pub tag: bool,
    /// The tag's annotation (default: the commit message).
    pub notes: Option<&'a str>,
    /// A release follows: the journal stays until [`finish`].
    pub release: bool,
}

/// What the user asks for, given the version a change starts from.
pub type Asked<'a> = &'a dyn Fn(&Version) -> Result<Version>;

/// How to finish an interrupted `hoist release`.
pub const FINISH_RELEASE: &str =
    "run `hoist release --resume` (or the same `hoist release` command again) to finish it";

/// The checkout's interrupted release or version change, if any.
///
/// Unless `look_only`, version edits a killed run left half done are completed first
/// (the journal holds every new text) and its temporary files swept; a plain version
/// change (no commit, no tag) is then done and forgotten. A journal naming a file that
/// is not a `[version]` file is refused: it is not this project's.
pub fn pending(git: &Git, settings: &ReleaseSettings, look_only: bool) -> Result<Option<Record>> {
    match recover(git, settings, look_only)? {
        Some(record) if record.ends_with_files() => {
            if !look_only {
                journal(git)?.remove()?;
            }
            Ok(None)
        }
        other => Ok(other),
    }
}

/// The journal's record, checked, with what a killed run did made and recorded (see
/// [`pending`]); a plain version change is returned too, its files complete.
fn recover(git: &Git, settings: &ReleaseSettings, look_only: bool) -> Result<Option<Record>> {
    let journal = journal(git)?;
    let Some(mut record) = journal.load()? else {
        return Ok(None);
    };
    let known: Vec<PathBuf> = settings
        .source
        .iter()
        .chain(&settings.sync)
        .map(|s| same_file(&s.path))
        .collect();
    if let Some(stranger) = record
        .edits
        .iter()
        .find(|e| !known.contains(&same_file(&e.path)))
    {
        return Err(refused(format!(
            "{}: the interrupted change to v{} edits {}, which is not one of the [version] files; if hoist.toml changed since, delete the journal",
            journal.path().display(),
            record.version,
            stranger.path.display()
        )));
    }
    // A run killed right after a step's side effect could not record it: look.
    let seen = observed_step(git, &record)?;
    if look_only {
        record.step = seen;
        return Ok(Some(record));
    }
    if record.step < Step::Written {
        apply(&record.edits)?;
        record.step = Step::Written;
    }
    record.step = record.step.max(seen);
    journal.save(&record)?;
    Ok(Some(record))
}

/// The previous and the new version of the interrupted `record`, when what the user
/// asks for now (`asked`, applied to the version the release started from) is that
/// same version; `retry` is the command that finishes it.
pub fn same_version(
    record: &Record,
    asked: Option<Asked>,
    retry: &str,
) -> Result<(Version, Version)> {
    let previous = parse_version(&record.previous, "the release journal")?;
    let version = parse_version(&record.version, "the release journal")?;
    if let Some(asked) = asked {
        let wanted = asked(&previous)?;
        if wanted != version {
            return Err(refused(format!(
                "the change from {previous} to v{version} was interrupted ({}); this command asks for v{wanted}: finish v{version} first ({retry})",
                describe(record.step)
            )));
        }
    }
    Ok((previous, version))
}

/// Refuses to finish `record` in the other mode: a release begun with `--no-git` is
/// finished with `--no-git`, one with a commit or tag without it.
pub fn check_mode(record: &Record, no_git: bool) -> Result<()> {
    let in_git = record.commit.is_some() || record.tag.is_some();
    if in_git != no_git {
        return Ok(());
    }
    Err(refused(format!(
        "the release of v{} was interrupted ({}) and was begun {} --no-git: run it again {} --no-git to finish it",
        record.version,
        describe(record.step),
        if in_git { "without" } else { "with" },
        if in_git { "without" } else { "with" },
    )))
}

/// What the journal's step means, for messages.
pub fn describe(step: Step) -> &'static str {
    match step {
        Step::Editing => "while writing the version files",
        Step::Written => "the version files are written, not committed",
        Step::Staged => "the version files are staged, not committed",
        Step::Committed => "the release commit is made, not tagged",
        Step::Tagged => "the release commit is made and tagged, not yet published",
    }
}

/// A version change under way in one checkout.
pub struct Transaction {
    git: Git,
    journal: Journal,
    record: Record,
}

impl Transaction {
    /// Starts changing `files` to `new` (refused while another change is under way).
    pub fn begin(
        git: &Git,
        settings: &ReleaseSettings,
        files: &VersionFiles,
        new: &Version,
        steps: GitSteps,
    ) -> Result<Transaction> {
        let journal = journal(git)?;
        if let Some(record) = journal.load()? {
            return Err(refused(format!(
                "the change to v{} is under way ({}; {}): finish it first ({FINISH_RELEASE})",
                record.version,
                describe(record.step),
                journal.path().display()
            )));
        }
        let message = settings.commit.message(new);
        let record = Record {
            version: new.to_string(),
            previous: files.version().to_string(),
            commit: steps.commit.then(|| message.clone()),
            release: steps.release,
            tag: steps.tag.then(|| {
                let notes = steps.notes.map_or(message, ToString::to_string);
                (settings.commit.tag(new), notes)
            }),
            head: git.head_sha().ok(),
            step: Step::Editing,
            edits: files.edits(new)?,
        };
        journal.save(&record)?;
        kill_point("journal-begun");
        Ok(Transaction {
            git: git.clone(),
            journal,
            record,
        })
    }

    /// Continues the interrupted change `record` (from [`pending`]).
    pub fn resume(git: &Git, record: Record) -> Result<Transaction> {
        Ok(Transaction {
            journal: journal(git)?,
            git: git.clone(),
            record,
        })
    }

    /// The record: versions, commit message, tag, step.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Makes every step not made yet; `finish` says how to finish after a failure.
    /// Returns once the commit is tagged (the journal stays until [`finish`]), or once
    /// the files are written when no git step is asked for (the journal is removed).
    pub fn run(&mut self, finish: &str) -> Result<()> {
        let paths: Vec<PathBuf> = self.record.edits.iter().map(|e| e.path.clone()).collect();
        if self.record.step < Step::Written {
            apply(&self.record.edits)?;
            kill_point("files-written");
            self.advance(Step::Written)?;
        }
        if let Some(message) = self.record.commit.clone() {
            if self.record.step < Step::Staged {
                if let Err(e) = self.git.add(&paths) {
                    return Err(self.undo(e));
                }
                kill_point("staged");
                self.advance(Step::Staged)?;
            }
            if self.record.step < Step::Committed {
                if !committed_already(&self.git, &self.record, &message)?
                    && let Err(e) = self.git.commit(&paths, &message)
                {
                    return Err(self.undo(e));
                }
                kill_point("committed");
                self.advance(Step::Committed)?;
            }
        }
        if let Some((tag, notes)) = self.record.tag.clone()
            && self.record.step < Step::Tagged
        {
            self.tag(&tag, &notes, finish)?;
            kill_point("tagged");
            self.advance(Step::Tagged)?;
        }
        if self.record.ends_with_files() {
            self.journal.remove()?;
        }
        Ok(())
    }

    fn tag(&self, tag: &str, notes: &str, finish: &str) -> Result<()> {
        let head = self.git.head_sha()?;
        match self.git.tag_commit(tag) {
            // Made by a run killed before it could record it.
            Some(commit) if commit == head => Ok(()),
            Some(commit) => Err(refused(format!(
                "the git tag {tag} exists on {commit}, not on the release commit {head} of v{}: delete the tag if it is wrong, then {finish}",
                self.record.version
            ))),
            None => self.git.tag_annotated(tag, notes).map_err(|e| {
                step(
                    format!(
                        "v{} is committed, but its git tag {tag} could not be made; fix the cause, then {finish}",
                        self.record.version
                    ),
                    e,
                )
            }),
        }
    }

    fn advance(&mut self, to: Step) -> Result<()> {
        self.record.step = to;
        self.journal.save(&self.record)
    }

    /// After a refused `git add` or commit: the files as they were, unstaged, and the
    /// journal forgotten; the error says so.
    fn undo(&self, cause: super::ReleaseError) -> super::ReleaseError {
        let paths: Vec<PathBuf> = self.record.edits.iter().map(|e| e.path.clone()).collect();
        let before: Vec<(PathBuf, String)> = self
            .record
            .edits
            .iter()
            .map(|e| (e.path.clone(), e.before.clone()))
            .collect();
        let undone = write_all(&before)
            .and_then(|()| self.git.unstage(&paths))
            .and_then(|()| self.journal.remove());
        let version = &self.record.version;
        match undone {
            Ok(()) => step(
                format!(
                    "the release commit of v{version} was refused; the version files are back at {} and unstaged",
                    self.record.previous
                ),
                cause,
            ),
            Err(e) => step(
                format!(
                    "the release commit of v{version} was refused ({cause}), and putting the version files back failed; {FINISH_RELEASE}"
                ),
                e,
            ),
        }
    }
}

/// Forgets the checkout's journal: the release is complete.
pub fn finish(git: Option<&Git>) -> Result<()> {
    match git {
        Some(git) => journal(git)?.remove(),
        None => Ok(()),
    }
}

/// Writes `new` into `files` with no commit: journaled in a git checkout (all or
/// nothing even under SIGKILL), else all or nothing within this process.
pub fn write_version(
    git: Option<&Git>,
    settings: &ReleaseSettings,
    files: &VersionFiles,
    new: &Version,
) -> Result<()> {
    match git {
        Some(git) => Transaction::begin(git, settings, files, new, GitSteps::default())?.run(""),
        None => write_all(
            &files
                .edits(new)?
                .into_iter()
                .map(|e| (e.path, e.after))
                .collect::<Vec<_>>(),
        ),
    }
}

/// Writes each edit's new text where the file does not hold it yet, and sweeps the
/// temporary files a killed run left beside them.
fn apply(edits: &[Edit]) -> Result<()> {
    for edit in edits {
        hoist_layers::sweep_temp_files(crate::fsutil::parent_dir(&edit.path));
    }
    let todo: Vec<(PathBuf, String)> = edits
        .iter()
        .filter(|e| std::fs::read_to_string(&e.path).ok().as_deref() != Some(e.after.as_str()))
        .map(|e| (e.path.clone(), e.after.clone()))
        .collect();
    write_all(&todo)
}

/// The step `record` reached as git shows it: a release commit on top of the recorded
/// HEAD is made, a tag on that commit is made.
fn observed_step(git: &Git, record: &Record) -> Result<Step> {
    let mut step = record.step;
    if let Some(message) = &record.commit
        && step >= Step::Written
        && step < Step::Committed
        && committed_already(git, record, message)?
    {
        step = Step::Committed;
    }
    if let Some((tag, _)) = &record.tag
        && (step >= Step::Committed || record.commit.is_none() && step >= Step::Written)
        && step < Step::Tagged
        && git.tag_commit(tag) == Some(git.head_sha()?)
    {
        step = Step::Tagged;
    }
    Ok(step)
}

/// Whether HEAD is the release commit a killed run made on top of the recorded HEAD.
fn committed_already(git: &Git, record: &Record, message: &str) -> Result<bool> {
    let head = git.head_sha()?;
    let subject = message.lines().next().unwrap_or_default().trim_end();
    Ok(record.head.as_deref() != Some(head.as_str())
        && git.parent(&head) == record.head
        && git.head_subject()? == subject)
}

fn journal(git: &Git) -> Result<Journal> {
    Ok(Journal::in_git_dir(&git.git_dir()?))
}

/// How to finish an interrupted `hoist version bump|set --commit`.
const FINISH_VERSION: &str = "run the same `hoist version` command again to finish it";

/// What `hoist version bump|set` changed (or would change).
#[derive(Debug)]
pub struct VersionChange {
    /// The version before.
    pub previous: Version,
    /// The version now.
    pub version: Version,
    /// Each file's text before and after.
    pub edits: Vec<Edit>,
    /// The git tag made, if any.
    pub tag: Option<String>,
}

/// `hoist version bump|set`: the version `asked` makes of the current one, written
/// into every version file and, with `steps`, committed and tagged: one transaction,
/// so an interrupted change is finished by the same command and a refused commit
/// changes nothing. `dry_run` works it out and writes nothing.
pub fn change_version(
    settings: &ReleaseSettings,
    git: Option<&Git>,
    asked: Asked,
    (steps, allow_branch): (GitSteps, bool),
    dry_run: bool,
) -> Result<VersionChange> {
    let in_git = steps.commit || steps.tag;
    if let Some(git) = git
        && let Some(record) = recover(git, settings, dry_run)?
        && let Some(change) = finish_change(git, settings, record, asked, in_git, dry_run)?
    {
        return Ok(change);
    }
    let files = settings.read()?;
    let previous = files.version().clone();
    let version = asked(&previous)?;
    let tag = steps.tag.then(|| settings.commit.tag(&version));
    let edits = files.edits(&version)?;
    if let Some(git) = git.filter(|_| in_git) {
        let tag_name = settings.commit.tag(&version);
        super::steps::check_git(git, &files, allow_branch, None, &tag_name)?;
        if !dry_run {
            Transaction::begin(git, settings, &files, &version, steps)?.run(FINISH_VERSION)?;
            finish(Some(git))?;
        }
    } else if !dry_run {
        write_version(git, settings, &files, &version)?;
    }
    Ok(VersionChange {
        previous,
        version,
        edits,
        tag,
    })
}

/// An interrupted change met by `hoist version bump|set`: finished when this command
/// asks for its version (a plain edit's files are complete already), forgotten when
/// it is a plain edit and this command asks for something else (`None`: go on from
/// the files), refused when it has git steps and this command has none or asks for
/// another version.
fn finish_change(
    git: &Git,
    settings: &ReleaseSettings,
    record: Record,
    asked: Asked,
    in_git: bool,
    dry_run: bool,
) -> Result<Option<VersionChange>> {
    if record.ends_with_files() {
        let (previous, version) = same_version(&record, None, FINISH_VERSION)?;
        let same = !in_git && asked(&previous)? == version;
        if !dry_run {
            journal(git)?.remove()?;
        }
        return Ok(same.then(|| VersionChange {
            previous,
            version,
            edits: record.edits,
            tag: None,
        }));
    }
    // (A `release --no-git` record has no git step: not this command's to finish.)
    if !in_git || record.commit.is_none() && record.tag.is_none() {
        return Err(refused(format!(
            "the change to v{} is under way ({}): finish it first ({FINISH_RELEASE})",
            record.version,
            describe(record.step)
        )));
    }
    let (previous, version) = same_version(&record, Some(asked), FINISH_VERSION)?;
    let files = settings.read()?;
    super::steps::check_clean(git, &files, "finishing the version change")?;
    let tag = record.tag.as_ref().map(|(tag, _)| tag.clone());
    let edits = record.edits.clone();
    if !dry_run {
        Transaction::resume(git, record)?.run(FINISH_VERSION)?;
        finish(Some(git))?;
    }
    Ok(Some(VersionChange {
        previous,
        version,
        edits,
        tag,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn an_interrupted_set_of_edits_is_completed_and_its_temps_swept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("package.json"), dir.path().join("VERSION"));
        // As a run killed between the two renames left it: `a` new, `b` old, and the
        // temporary file that was to replace `b` (older than this run).
        std::fs::write(&a, "{\"version\": \"0.2.0\"}\n").unwrap();
        std::fs::write(&b, "0.1.0\n").unwrap();
        let temp = dir.path().join(".hoist-tmp-abc123");
        std::fs::write(&temp, "0.2.0\n").unwrap();
        let past = SystemTime::now() - Duration::from_hours(1);
        std::fs::File::options()
            .write(true)
            .open(&temp)
            .unwrap()
            .set_modified(past)
            .unwrap();
        let edits = [
            Edit {
                path: a.clone(),
                before: "{\"version\": \"0.1.0\"}\n".into(),
                after: "{\"version\": \"0.2.0\"}\n".into(),
            },
            Edit {
                path: b.clone(),
                before: "0.1.0\n".into(),
                after: "0.2.0\n".into(),
            },
        ];
        apply(&edits).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), edits[0].after);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "0.2.0\n");
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["VERSION", "package.json"],
            "the dead run's temp is swept"
        );
        // Applying again changes nothing (a second crash during recovery is fine).
        apply(&edits).unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "0.2.0\n");
    }

    fn record(step: Step) -> Record {
        Record {
            version: "0.2.0".into(),
            previous: "0.1.0".into(),
            commit: Some("Release v0.2.0".into()),
            release: true,
            tag: Some(("v0.2.0".into(), "Release v0.2.0".into())),
            head: None,
            step,
            edits: Vec::new(),
        }
    }

    #[test]
    fn the_same_command_finishes_the_same_version_and_another_is_refused() {
        let patch = |v: &Version| super::super::steps::bump_by_name("minor", None, v);
        let (previous, version) =
            same_version(&record(Step::Committed), Some(&patch), "retry").unwrap();
        assert_eq!(
            (previous.to_string(), version.to_string()),
            ("0.1.0".into(), "0.2.0".into())
        );
        // --resume asks for nothing: the journal's version.
        assert!(same_version(&record(Step::Staged), None, "retry").is_ok());
        let major = |v: &Version| super::super::steps::bump_by_name("major", None, v);
        let err = same_version(&record(Step::Committed), Some(&major), "run `x --resume`")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("v0.2.0")
                && err.contains("v1.0.0")
                && err.contains("run `x --resume`")
                && err.contains("not tagged"),
            "{err}"
        );
    }
}
