//! What one command's registry work shares across every member, platform, artifact and
//! tag it pushes (issue 19): the count of requests made, and a ledger of blobs per
//! registry, so that a blob several images need goes up once and is mounted
//! everywhere else. The bound on requests in flight lives with each registry's state
//! in [`super::transport`] (every request passes there); this module keeps what the
//! pushes consult.
//!
//! The ledger is go-containerregistry's per-digest once-guard: the first push that
//! needs a blob holds its slot while it checks, mounts or uploads it; a sibling
//! needing the same blob waits for that (rather than starting a second upload of the
//! same bytes), then mounts it from the repository that now holds it, or skips it when
//! that is its own repository.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hoist_layers::Digest;
use serde::Serialize;

/// Requests made, by HTTP method, and blob bytes uploaded, over a whole command, and
/// the command's phases (from the creation of the transport to its first named phase:
/// `prepare`).
#[derive(Debug)]
pub struct RequestCounts {
    by_method: Mutex<BTreeMap<String, u64>>,
    uploaded: Mutex<u64>,
    blobs: Mutex<BlobCounts>,
    /// Phases begun, each with when and how many requests had been made by then.
    phases: Mutex<Vec<(String, Instant, u64)>>,
    /// The same counts per repository (`REGISTRY/REPO`), whose sum they are.
    by_repository: Mutex<BTreeMap<String, RepositoryStats>>,
    /// Registries that answered 429, with the bound on requests in flight they were
    /// cut to ([`super::window`]).
    cuts: Mutex<BTreeMap<String, usize>>,
}

impl Default for RequestCounts {
    fn default() -> RequestCounts {
        RequestCounts {
            by_method: Mutex::default(),
            uploaded: Mutex::default(),
            blobs: Mutex::default(),
            phases: Mutex::new(vec![("prepare".to_string(), Instant::now(), 0)]),
            by_repository: Mutex::default(),
            cuts: Mutex::default(),
        }
    }
}

/// One phase of a command: how long it took, how many requests it made.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseStats {
    /// `prepare` (until the first named phase), `read tags`, `push`, `sign`, `tags`.
    pub name: String,
    /// Wall time.
    pub seconds: f64,
    /// Registry requests made meanwhile.
    pub requests: u64,
}

/// What became of the blobs a command put through its ledger: every image's layers
/// and configs, and its artifacts' (SBOM documents, signatures and their configs,
/// provenance envelopes, the empty config), each counted once per repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlobCounts {
    /// Uploaded.
    pub uploaded: u64,
    /// Mounted from another repository of the registry.
    pub mounted: u64,
    /// There already (the registry said so, or this command put it there).
    pub skipped: u64,
}

/// What became of one blob a push put somewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOutcome {
    /// It was there.
    Skipped,
    /// Mounted from another repository.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// A snapshot of [`RequestCounts`] (the `registry` field of `--json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RequestStats {
    /// Requests sent to registries, retries and redirect hops included (token
    /// requests are not), by method.
    pub by_method: BTreeMap<String, u64>,
    /// All of them.
    pub total: u64,
    /// Bytes of blobs uploaded (bodies of completed uploads).
    pub bytes_uploaded: u64,
    /// The blobs put through the ledger, by what became of them.
    pub blobs: BlobCounts,
    /// The command's phases, in order.
    pub phases: Vec<PhaseStats>,
    /// The counts above per repository (`REGISTRY/REPO`): a workspace member's or a
    /// push destination's part of them. Not in `--json` as such: the CLI sums each
    /// image's repositories ([`Self::share`]).
    #[serde(skip)]
    pub by_repository: BTreeMap<String, RepositoryStats>,
    /// Registries that answered 429 (too many requests), each with the requests in
    /// flight it was held to afterwards (`--registry-jobs` halved per crowd of
    /// refusals); absent when none did.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub in_flight_cut_to: BTreeMap<String, usize>,
}

/// What one repository, or several (an image's), took of a command's registry work:
/// [`RequestStats`] without the phases, which are the whole command's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepositoryStats {
    /// Requests sent, by method.
    pub by_method: BTreeMap<String, u64>,
    /// All of them.
    pub total: u64,
    /// Bytes of blobs uploaded.
    pub bytes_uploaded: u64,
    /// The blobs put through the ledger, by what became of them.
    pub blobs: BlobCounts,
}

impl RequestStats {
    /// The sum of the repositories `mine` picks (by `REGISTRY/REPO`).
    pub fn share(&self, mine: impl Fn(&str) -> bool) -> RepositoryStats {
        let mut sum = RepositoryStats::default();
        for part in self
            .by_repository
            .iter()
            .filter(|(name, _)| mine(name))
            .map(|(_, part)| part)
        {
            for (method, n) in &part.by_method {
                *sum.by_method.entry(method.clone()).or_default() += n;
            }
            sum.total += part.total;
            sum.bytes_uploaded += part.bytes_uploaded;
            sum.blobs.uploaded += part.blobs.uploaded;
            sum.blobs.mounted += part.blobs.mounted;
            sum.blobs.skipped += part.blobs.skipped;
        }
        sum
    }
}

impl BlobCounts {
    fn add(&mut self, outcome: BlobOutcome) {
        match outcome {
            BlobOutcome::Skipped => self.skipped += 1,
            BlobOutcome::Mounted => self.mounted += 1,
            BlobOutcome::Uploaded => self.uploaded += 1,
        }
    }
}

impl RequestCounts {
    /// `change` applied to `repository`'s counts.
    fn in_repository(&self, repository: &str, change: impl FnOnce(&mut RepositoryStats)) {
        let mut all = self.by_repository.lock().expect("repository counts");
        match all.get_mut(repository) {
            Some(part) => change(part),
            None => change(all.entry(repository.to_string()).or_default()),
        }
    }

    /// Counts one request to `repository` (`REGISTRY/REPO`).
    /// `registry` answered 429 and its bound on requests in flight is now `bound`.
    pub(super) fn cut(&self, registry: &str, bound: usize) {
        self.cuts
            .lock()
            .expect("cuts")
            .insert(registry.to_string(), bound);
    }

    pub(super) fn count(&self, repository: &str, method: &str) {
        *self
            .by_method
            .lock()
            .expect("request counts")
            .entry(method.to_string())
            .or_default() += 1;
        self.in_repository(repository, |part| {
            *part.by_method.entry(method.to_string()).or_default() += 1;
            part.total += 1;
        });
    }

    /// Counts the bytes of a blob uploaded to `repository`.
    pub(super) fn uploaded(&self, repository: &str, bytes: u64) {
        *self.uploaded.lock().expect("upload count") += bytes;
        self.in_repository(repository, |part| part.bytes_uploaded += bytes);
    }

    /// Counts what became of one blob put into `repository` through the ledger.
    pub(super) fn blob(&self, repository: &str, outcome: BlobOutcome) {
        self.blobs.lock().expect("blob counts").add(outcome);
        self.in_repository(repository, |part| part.blobs.add(outcome));
    }

    fn total(&self) -> u64 {
        self.by_method
            .lock()
            .expect("request counts")
            .values()
            .sum()
    }

    /// Ends the phase under way and begins `name`.
    pub fn phase(&self, name: &str) {
        let made = self.total();
        self.phases
            .lock()
            .expect("phases")
            .push((name.to_string(), Instant::now(), made));
    }

    /// What was counted so far (the phase under way ends now).
    pub fn snapshot(&self) -> RequestStats {
        let by_method = self.by_method.lock().expect("request counts").clone();
        let total = by_method.values().sum();
        let phases = self.phases.lock().expect("phases").clone();
        let ends = phases
            .iter()
            .skip(1)
            .map(|(_, at, made)| (*at, *made))
            .chain([(Instant::now(), total)]);
        RequestStats {
            total,
            by_method,
            bytes_uploaded: *self.uploaded.lock().expect("upload count"),
            blobs: *self.blobs.lock().expect("blob counts"),
            by_repository: self
                .by_repository
                .lock()
                .expect("repository counts")
                .clone(),
            in_flight_cut_to: self.cuts.lock().expect("cuts").clone(),
            phases: phases
                .iter()
                .zip(ends)
                .map(|((name, start, before), (end, after))| PhaseStats {
                    name: name.clone(),
                    seconds: end.duration_since(*start).as_secs_f64(),
                    requests: after - before,
                })
                .collect(),
        }
    }
}

/// Where a blob is known to be in one registry: the repositories that hold it.
pub(super) type Holders = BTreeSet<String>;

/// A blob's holders behind the lock a push takes while it puts the blob somewhere.
type Slot = Arc<tokio::sync::Mutex<Holders>>;

/// Per registry and digest, the repositories known to hold the blob, behind an async
/// lock that a push holds while it puts the blob somewhere (see the module docs).
#[derive(Debug, Default)]
pub struct BlobLedger {
    slots: Mutex<BTreeMap<(String, Digest), Slot>>,
    /// Per registry, the repositories this command pushes to: each push's token asks
    /// to pull from them all, so that it may mount what a sibling uploaded.
    targets: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl BlobLedger {
    /// The slot of `digest` in `registry`: lock it to read or change its holders.
    pub(super) fn slot(&self, registry: &str, digest: &Digest) -> Slot {
        Arc::clone(
            self.slots
                .lock()
                .expect("blob ledger")
                .entry((registry.to_string(), digest.clone()))
                .or_default(),
        )
    }

    /// Tells the ledger that this command pushes to `repository` of `registry`.
    pub fn announce(&self, registry: &str, repository: &str) {
        self.targets
            .lock()
            .expect("push targets")
            .entry(registry.to_string())
            .or_default()
            .insert(repository.to_string());
    }

    /// The repositories of `registry` this command pushes to, but `except`.
    pub(super) fn siblings(&self, registry: &str, except: &str) -> Vec<String> {
        self.targets
            .lock()
            .expect("push targets")
            .get(registry)
            .map(|all| all.iter().filter(|r| *r != except).cloned().collect())
            .unwrap_or_default()
    }
}

/// The most bytes of one document remembered (manifests and configs are a few KiB).
const DOCUMENT_KEPT: usize = 256 << 10;
/// The most documents remembered per registry.
const DOCUMENTS_KEPT: usize = 4096;

/// A repository and a digest in it.
type RepositoryDigest = (String, String);

/// Manifests and configs a command read by digest, per repository: content-addressed,
/// so a second reader (the growth check after the layer-cache lookup, several members
/// on one base) is answered from here. Only bytes that hash to their digest are kept.
#[derive(Debug, Default)]
pub struct Documents {
    kept: Mutex<BTreeMap<RepositoryDigest, Arc<Vec<u8>>>>,
}

impl Documents {
    /// What `repository` answered for `digest` before, if anything.
    pub(super) fn get(&self, repository: &str, digest: &str) -> Option<Arc<Vec<u8>>> {
        self.kept
            .lock()
            .expect("documents")
            .get(&(repository.to_string(), digest.to_string()))
            .cloned()
    }

    /// Remembers `bytes` as `repository`'s `reference` when that is their digest.
    pub(super) fn keep(&self, repository: &str, reference: &str, bytes: &[u8]) {
        if bytes.len() > DOCUMENT_KEPT || Digest::sha256_of(bytes).as_str() != reference {
            return;
        }
        let mut kept = self.kept.lock().expect("documents");
        if kept.len() < DOCUMENTS_KEPT {
            kept.insert(
                (repository.to_string(), reference.to_string()),
                Arc::new(bytes.to_vec()),
            );
        }
    }
}

/// What one tag names, once looked up or put: `None` until then, `Some(None)` when
/// the registry holds nothing there.
type TagState = Option<Option<Digest>>;

/// A tag's state behind the lock a lookup holds while it asks.
type TagSlot = Arc<tokio::sync::Mutex<TagState>>;

/// What each tag named when this command last looked (a `HEAD` or `GET` by tag) or
/// put it, per repository: one lookup per tag per run (issue 19), however many steps
/// ask (the preflight, the forward-only and immutability checks, the growth table,
/// the tag moves). Each tag has an async lock that a lookup holds while it asks, so
/// that steps asking at once wait for one answer rather than each asking. A tag this
/// command puts is recorded as the digest of the bytes put. A deliberate second look
/// (the pinned-tag recheck after a put, which looks for a concurrent release) asks the
/// registry and records what it says.
#[derive(Debug, Default)]
pub struct TagMemo {
    slots: Mutex<BTreeMap<(String, String), TagSlot>>,
}

impl TagMemo {
    /// The slot of `tag` in `repository`: lock it to read or record what it names.
    pub(super) fn slot(&self, repository: &str, tag: &str) -> TagSlot {
        Arc::clone(
            self.slots
                .lock()
                .expect("tag memo")
                .entry((repository.to_string(), tag.to_string()))
                .or_default(),
        )
    }

    /// Records that `tag` in `repository` names `digest` (a put, or a read by tag).
    pub(super) async fn record(&self, repository: &str, tag: &str, digest: Option<Digest>) {
        *self.slot(repository, tag).lock().await = Some(digest);
    }
}

/// One repository's census: unset until taken; `None` when no whole list came.
pub(super) type CensusCell = Arc<tokio::sync::OnceCell<Option<Listing>>>;

/// A whole tag list, or the registry's word that the repository does not exist.
#[derive(Debug, Clone)]
pub(super) enum Listing {
    /// Every tag the repository had.
    Tags(BTreeSet<String>),
    /// 404 `NAME_UNKNOWN`: no such repository, so no tag in it, and (but what this
    /// command puts there since) most likely no manifest or blob: distribution also
    /// answers so for a repository holding only untagged images.
    NoRepository,
}

/// Each repository's tags as one `GET …/tags/list` answered them, taken once per
/// repository and command before its tags are looked up one by one: a tag absent
/// from a whole list is absent without a `HEAD` of its own (a first release asks one
/// request per repository instead of one per tag and per referrers tag). Only a
/// list the registry gave whole counts: a page with a next one, an error, or a
/// registry that refuses listings leaves every tag to its own lookup. A tag this
/// command puts or reads afterwards is answered by [`TagMemo`], asked first.
#[derive(Debug, Default)]
pub struct TagCensus {
    lists: Mutex<BTreeMap<String, CensusCell>>,
    /// Set once a listing was refused (401, 403: a token that may push but not list,
    /// as some registries' scopes allow): the other repositories are not asked.
    refused: std::sync::atomic::AtomicBool,
}

impl TagCensus {
    /// The cell of `repository`'s list: filled by the first caller, awaited by the
    /// others.
    pub(super) fn cell(&self, repository: &str) -> CensusCell {
        Arc::clone(
            self.lists
                .lock()
                .expect("tag census")
                .entry(repository.to_string())
                .or_default(),
        )
    }

    /// Whether `tag` was missing from `repository`'s whole list (`false` when no
    /// whole list was taken).
    pub(super) fn absent(&self, repository: &str, tag: &str) -> bool {
        match self.listing(repository) {
            Some(Listing::Tags(tags)) => !tags.contains(tag),
            Some(Listing::NoRepository) => true,
            None => false,
        }
    }

    /// Whether the registry said, when the census was taken, that `repository` did
    /// not exist: then nothing in it needs a `HEAD` to be known absent.
    pub(super) fn no_repository(&self, repository: &str) -> bool {
        matches!(self.listing(repository), Some(Listing::NoRepository))
    }

    fn listing(&self, repository: &str) -> Option<Listing> {
        self.lists
            .lock()
            .expect("tag census")
            .get(repository)
            .and_then(|cell| cell.get().cloned())
            .flatten()
    }

    pub(super) fn refused(&self) -> bool {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn refuse(&self) {
        self.refused
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_by_method() {
        let counts = RequestCounts::default();
        for (repository, method) in [
            ("r/a", "HEAD"),
            ("r/b", "GET"),
            ("r/a", "HEAD"),
            ("r/b", "PUT"),
        ] {
            counts.count(repository, method);
        }
        counts.uploaded("r/a", 10);
        counts.uploaded("r/b", 5);
        counts.blob("r/a", BlobOutcome::Uploaded);
        counts.blob("r/b", BlobOutcome::Skipped);
        counts.blob("r/b", BlobOutcome::Skipped);
        counts.phase("push");
        counts.count("r/c", "PUT");
        let stats = counts.snapshot();
        assert_eq!(stats.total, 5);
        let phases: Vec<(&str, u64)> = stats
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.requests))
            .collect();
        assert_eq!(phases, [("prepare", 4), ("push", 1)]);
        assert_eq!(stats.by_method["HEAD"], 2);
        assert_eq!(stats.by_method["PUT"], 2);
        assert_eq!(stats.bytes_uploaded, 15);
        assert_eq!(
            stats.blobs,
            BlobCounts {
                uploaded: 1,
                mounted: 0,
                skipped: 2
            }
        );
        // Each repository's part, and the parts add up to the whole.
        let b = stats.share(|r| r == "r/b");
        assert_eq!((b.total, b.bytes_uploaded, b.blobs.skipped), (2, 5, 2));
        assert_eq!(b.by_method["GET"], 1);
        let all = stats.share(|_| true);
        assert_eq!(
            (all.total, all.bytes_uploaded),
            (stats.total, stats.bytes_uploaded)
        );
        assert_eq!((all.blobs, all.by_method), (stats.blobs, stats.by_method));
    }

    #[test]
    fn only_documents_that_hash_to_their_name_are_kept() {
        let documents = Documents::default();
        let bytes = b"{\"schemaVersion\":2}";
        let digest = Digest::sha256_of(bytes);
        documents.keep("acme/app", digest.as_str(), bytes);
        documents.keep("acme/app", "latest", bytes);
        let other = Digest::sha256_of(b"other");
        documents.keep("acme/app", other.as_str(), bytes);
        assert_eq!(
            documents.get("acme/app", digest.as_str()).as_deref(),
            Some(&bytes.to_vec())
        );
        assert!(documents.get("acme/app", "latest").is_none());
        assert!(documents.get("acme/app", other.as_str()).is_none());
        assert!(documents.get("acme/other", digest.as_str()).is_none());
    }

    #[test]
    fn one_slot_per_registry_and_digest_and_siblings_exclude_the_asker() {
        let ledger = BlobLedger::default();
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let a = ledger.slot("r:5000", &digest);
        let b = ledger.slot("r:5000", &digest);
        let other = ledger.slot("s:5000", &digest);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        ledger.announce("r:5000", "acme/one");
        ledger.announce("r:5000", "acme/two");
        ledger.announce("s:5000", "acme/three");
        assert_eq!(ledger.siblings("r:5000", "acme/one"), ["acme/two"]);
        assert!(ledger.siblings("t:5000", "acme/one").is_empty());
    }
}
