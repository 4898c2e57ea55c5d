//! The project's version files, for `[version]`: pyproject.toml, package.json,
//! Cargo.toml and VERSION at the root and one directory down (frontend/package.json,
//! backend/pyproject.toml). Only files whose version hoist can read are listed.

use std::path::Path;

use serde::Serialize;

use crate::release::version_file::VersionFile;

/// Names looked for, in the order the source is chosen.
const NAMES: [&str; 4] = ["pyproject.toml", "package.json", "Cargo.toml", "VERSION"];
/// Directories never looked into.
const SKIP: [&str; 5] = ["node_modules", "target", "dist", "build", "venv"];
/// Subdirectories looked into at most (a bound on what a big checkout costs).
const MAX_DIRS: usize = 200;

/// `[version]`: source and sync, relative to the root; plus files left out and why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VersionPlan {
    /// The first file found.
    pub source: String,
    /// The others.
    pub sync: Vec<String>,
    /// `(file, why it was left out)`.
    pub skipped: Vec<(String, String)>,
    /// `(file, version)` of every file listed, so disagreements can be reported.
    pub versions: Vec<(String, String)>,
}

/// The version files under `root`, or `None` when there are none hoist can read.
pub fn find(root: &Path) -> Option<VersionPlan> {
    let mut dirs = vec![String::new()];
    if let Ok(entries) = std::fs::read_dir(root) {
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && !SKIP.contains(&n.as_str()))
            .collect();
        names.sort();
        names.truncate(MAX_DIRS);
        dirs.extend(names.into_iter().map(|n| format!("{n}/")));
    }
    let mut plan = VersionPlan::default();
    let mut found = Vec::new();
    for dir in &dirs {
        for name in NAMES {
            let relative = format!("{dir}{name}");
            let path = root.join(&relative);
            if !path.is_file() {
                continue;
            }
            match VersionFile::read(&path) {
                Ok(file) => {
                    plan.versions
                        .push((relative.clone(), file.version.to_string()));
                    found.push(relative);
                }
                Err(e) => plan.skipped.push((relative, e.to_string())),
            }
        }
    }
    let mut found = found.into_iter();
    plan.source = found.next()?;
    plan.sync = found.collect();
    Some(plan)
}
