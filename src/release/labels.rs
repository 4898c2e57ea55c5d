//! The `org.opencontainers.image.*` labels and annotations a build of a versioned
//! project gets: `version`, `revision` (the HEAD commit), `created`, `source` (the git
//! remote as https, credentials stripped), and `title`, `description`, `licenses`,
//! `url` from the version source's metadata. The user's own labels and annotations
//! win over every one of them.
//!
//! `created` is `SOURCE_DATE_EPOCH` when set, else the HEAD commit's time, never the
//! clock: two builds of one commit must give one digest.

use std::collections::BTreeMap;
use std::path::Path;

use semver::Version;

use super::Result;
use super::git::Heads;
use super::settings::ReleaseSettings;
use super::version_file::Metadata;
use crate::config::ConfigFile;
use crate::oci::canonical::rfc3339;
use crate::plan::Plan;

/// `org.opencontainers.image.version`: read back from images to keep tags moving
/// forward.
pub const VERSION: &str = "org.opencontainers.image.version";
/// `org.opencontainers.image.revision`: the commit built.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// `org.opencontainers.image.created`.
pub const CREATED: &str = "org.opencontainers.image.created";

/// The labels that name a build (which version, which commit, when) rather than what
/// it holds: the only ones a release changes in an image whose content is unchanged.
pub const BUILD_NAMES: [&str; 3] = [VERSION, REVISION, CREATED];

/// What the labels are made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The version.
    pub version: Option<Version>,
    /// The commit built.
    pub revision: Option<String>,
    /// Seconds since the epoch.
    pub created: Option<u64>,
    /// The source repository URL.
    pub source: Option<String>,
    /// From the version file.
    pub metadata: Metadata,
}

/// The labels `info` yields (only those it has a value for).
pub fn oci_labels(info: &BuildInfo) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            labels.insert(format!("org.opencontainers.image.{key}"), value);
        }
    };
    put("version", info.version.as_ref().map(ToString::to_string));
    put("revision", info.revision.clone());
    put("created", info.created.map(rfc3339));
    put("source", info.source.clone());
    put("title", info.metadata.name.clone());
    put("description", info.metadata.description.clone());
    put("licenses", info.metadata.license.clone());
    put("url", info.metadata.url.clone());
    labels
}

/// Gathers [`BuildInfo`] for the checkout the config lives in: the version file
/// (`version` overrides what it says, for a release about to write it), and git
/// when the directory is a git checkout (outside one, only version and metadata),
/// asked through `heads`.
pub fn gather(
    settings: &ReleaseSettings,
    version: Option<&Version>,
    source_date_epoch: Option<u64>,
    heads: &Heads,
) -> Result<BuildInfo> {
    let file = settings.source()?.read()?;
    let dir = file
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let head = heads.of(dir).unwrap_or_default();
    Ok(BuildInfo {
        version: Some(version.cloned().unwrap_or_else(|| file.version.clone())),
        revision: head.sha,
        created: source_date_epoch.or(head.time),
        source: head.source,
        metadata: file.metadata(),
    })
}

/// The OCI labels and annotations of a versioned build (`hoist build`, `hoist
/// release`, and `hoist verify`'s rebuild), added to the plan where the user set none;
/// a no-op without `[version]`.
pub fn label_plan(
    config: &Path,
    file: &ConfigFile,
    plan: &mut Plan,
    (version, heads): (Option<&Version>, &Heads),
) -> Result<()> {
    if file.version.is_none() {
        return Ok(());
    }
    let settings = ReleaseSettings::resolve(config, file)?;
    // The plan's epoch is SOURCE_DATE_EPOCH, or 0 when unset, which means: date the
    // image by its commit instead. Taken from the plan, not the environment, so that
    // `hoist verify` (which replays the recorded epoch) labels the rebuild the same.
    let epoch = (plan.epoch != 0).then_some(plan.epoch);
    let mut info = gather(&settings, version, epoch, heads)?;
    // Each member of a workspace is its own image: titled by its name, not by the
    // shared version file's project name.
    if let Some(member) = &file.inherited.member {
        info.metadata.name = Some(member.clone());
    }
    apply(plan, &oci_labels(&info));
    Ok(())
}

/// Adds `labels` to the plan's config labels and annotations where the user set no
/// value of their own.
pub fn apply(plan: &mut Plan, labels: &BTreeMap<String, String>) {
    for (key, value) in labels {
        plan.config_edits
            .labels
            .entry(key.clone())
            .or_insert_with(|| value.clone());
        plan.annotations
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
}

/// Names the plan's build as an earlier image's (`version`, `revision`, `created`):
/// `labels` are that image's config labels, `annotations` its annotations. A build of
/// unchanged content then gives exactly that image (`[workspace] keep_unchanged`).
/// Replaces what this build would say; a user's own value is the same in both, so
/// replacing it changes nothing. A name the earlier image lacks is left out.
pub fn name_as(
    plan: &mut Plan,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) {
    for key in BUILD_NAMES {
        for (earlier, ours) in [
            (labels, &mut plan.config_edits.labels),
            (annotations, &mut plan.annotations),
        ] {
            match earlier.get(key) {
                Some(value) => ours.insert(key.to_string(), value.clone()),
                None => ours.remove(key),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_build_info() {
        let info = BuildInfo {
            version: Some(Version::parse("1.2.3").unwrap()),
            revision: Some("abc".into()),
            created: Some(1_700_000_000),
            source: Some("https://github.com/a/b".into()),
            metadata: Metadata {
                name: Some("dash".into()),
                description: None,
                license: Some("MIT".into()),
                url: Some(String::new()),
            },
        };
        let labels = oci_labels(&info);
        let keys: Vec<_> = labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "org.opencontainers.image.created",
                "org.opencontainers.image.licenses",
                "org.opencontainers.image.revision",
                "org.opencontainers.image.source",
                "org.opencontainers.image.title",
                "org.opencontainers.image.version",
            ]
        );
        assert_eq!(
            labels["org.opencontainers.image.created"],
            "2023-11-14T22:13:20Z"
        );
    }

    fn plan_of(text: &str) -> Plan {
        let file = crate::config::ConfigFile::parse(text).unwrap();
        crate::plan::resolve(
            std::path::Path::new("hoist.toml"),
            &file,
            &crate::plan::Overrides::default(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn an_earlier_images_build_names_replace_this_builds() {
        let mut plan = plan_of("[image]\nbase = \"scratch\"\n");
        let now = BTreeMap::from([
            (VERSION.to_string(), "1.1.0".to_string()),
            (REVISION.to_string(), "new".to_string()),
            (CREATED.to_string(), "2024-01-01T00:00:00Z".to_string()),
            (
                "org.opencontainers.image.title".to_string(),
                "api".to_string(),
            ),
        ]);
        apply(&mut plan, &now);
        let earlier = BTreeMap::from([
            (VERSION.to_string(), "1.0.0".to_string()),
            (REVISION.to_string(), "old".to_string()),
        ]);
        let annotated = BTreeMap::from([(VERSION.to_string(), "1.0.0-custom".to_string())]);
        name_as(&mut plan, &earlier, &annotated);
        assert_eq!(plan.config_edits.labels[VERSION], "1.0.0");
        assert_eq!(plan.config_edits.labels[REVISION], "old");
        assert_eq!(plan.annotations[VERSION], "1.0.0-custom");
        assert!(!plan.annotations.contains_key(REVISION));
        // The earlier image had no created label: neither has the build named as it.
        assert!(!plan.config_edits.labels.contains_key(CREATED));
        assert!(!plan.annotations.contains_key(CREATED));
        assert_eq!(plan.annotations["org.opencontainers.image.title"], "api");
    }

    #[test]
    fn user_values_win() {
        let mut plan = plan_of(
            "[image]\nbase = \"scratch\"\n[config]\nlabels = { \"org.opencontainers.image.title\" = \"mine\" }\n[annotations]\n\"org.opencontainers.image.version\" = \"custom\"\n",
        );
        let labels = BTreeMap::from([
            (VERSION.to_string(), "1.0.0".to_string()),
            (
                "org.opencontainers.image.title".to_string(),
                "auto".to_string(),
            ),
        ]);
        apply(&mut plan, &labels);
        assert_eq!(
            plan.config_edits.labels["org.opencontainers.image.title"],
            "mine"
        );
        assert_eq!(plan.config_edits.labels[VERSION], "1.0.0");
        assert_eq!(plan.annotations[VERSION], "custom");
        assert_eq!(plan.annotations["org.opencontainers.image.title"], "auto");
    }
}
