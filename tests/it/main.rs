//! Integration tests: run the real `hoist` binary against the committed fixtures
//! (`testdata/base`, `testdata/base-docker`, `examples/dashboard`) and judge what it
//! writes by reading the blobs ourselves and with third-party tools (skopeo, umoci,
//! oci-image-tool, podman, zstd).
//!
//! Every test works in its own temporary directory, with its own `--cache-dir` and
//! `CI=true`; none touches the user's cache or the repository. The third-party tools
//! are required: `.ci/run` installs them, and a missing one fails the test loudly.

mod bounds;
mod build;
mod cache;
mod census;
mod common;
mod config_flags;
mod credentials;
mod diff;
mod errors;
mod faults;
mod features;
mod files;
mod finding;
mod flavours;
mod hostile;
mod init;
mod inspect;
mod integrity;
mod interop;
mod judges;
mod layers;
mod load;
mod login;
mod outputs;
mod podman;
mod props;
mod proxy;
mod pull_tag;
mod push;
mod python;
mod python_base;
mod python_index;
mod referrers;
mod regcache;
mod registry;
mod release;
mod release_files;
mod release_split;
mod release_txn;
mod reproducible;
mod sbom;
mod schedule;
mod sign;
mod tls;
mod token_auth;
mod transport;
mod verify;
mod verify_provenance;
mod verify_revision;
mod visibility;
mod workspace;
