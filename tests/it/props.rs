//! Property tests (proptest) of the parsers that take outside input: registry
//! references, hoist.toml into a plan, version files, base image documents, and layer
//! tars (diff's reader and the archive unpacker).
//!
//! Each property runs a few hundred generated cases by default (the whole set takes
//! well under a minute in a debug build); `PROPTEST_CASES=20000 cargo test -p hoist
//! --test it props::` runs them longer (docs/testing.md). A failing case is shrunk and
//! its seed saved under tests/proptest-regressions/props/ (commit it: it is replayed
//! first on every later run).

mod base_documents;
mod config_plan;
pub mod layer_tars;
mod reference;
mod version_files;

use proptest::test_runner::Config;

/// The proptest configuration for a property: `ci_cases` cases unless
/// `PROPTEST_CASES` asks for another number (the long runs).
pub fn cases(ci_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = ci_cases;
    }
    config
}
