//! `hoist login` and `hoist logout`.

use super::progress::note;
use anyhow::{Context as _, Result};
use hoist::registry::auth;
use hoist::registry::block_on;
use hoist::registry::credential_store;
use hoist::registry::login::{Verdict, verify};

use super::{LoginArgs, LogoutArgs};

/// `https://ghcr.io/v2/` → `ghcr.io`; Docker Hub's many names → `docker.io`.
fn registry_name(given: &str) -> Result<String> {
    let without_scheme = given
        .strip_prefix("https://")
        .or_else(|| given.strip_prefix("http://"))
        .unwrap_or(given);
    let host = without_scheme.split('/').next().unwrap_or_default();
    anyhow::ensure!(
        !host.is_empty() && !host.contains(char::is_whitespace) && !host.contains('@'),
        "`{given}` is not a registry host (HOST[:PORT])"
    );
    Ok(match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_ascii_lowercase(),
    })
}

pub fn login(args: &LoginArgs) -> Result<()> {
    anyhow::ensure!(
        !args.registry_flags.offline,
        "--offline: hoist login needs the network"
    );
    let registry = registry_name(&args.registry)?;
    let mut options = args.registry_flags.options(1)?;
    let Some((credentials, _)) = auth::given_credentials(options.credentials.take())? else {
        anyhow::bail!(
            "hoist login needs credentials: --username USER --password-stdin, or HOIST_REGISTRY_USERNAME and HOIST_REGISTRY_PASSWORD"
        );
    };
    // Read before anything is checked or stored: a malformed auth.json stops the login
    // with nothing changed.
    let podman_file = credential_store::podman_file_naming(&registry)?;
    let verdict = block_on(verify(&registry, &credentials, &options))
        .with_context(|| format!("logging in to {registry}"))?;
    let stored = credential_store::store(&registry, &credentials)
        .with_context(|| format!("storing the credentials for {registry}"))?;
    if let Some(podman) = podman_file {
        note!(
            "note: {} also holds credentials for {registry}, and hoist reads it first (`hoist logout {registry}` removes both)",
            podman.display()
        );
    }
    if verdict == Verdict::NotRequired {
        note!("note: {registry} lets anyone in, so the credentials were stored unchecked");
    }
    note!(
        "logged in to {registry} as {} (stored in {stored})",
        credentials.username
    );
    Ok(())
}

pub fn logout(args: &LogoutArgs) -> Result<()> {
    let registry = registry_name(&args.registry)?;
    let removals = credential_store::erase(&registry)
        .with_context(|| format!("removing the credentials for {registry}"))?;
    if removals.is_empty() {
        let searched: Vec<String> = credential_store::searched_files()
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        note!(
            "not logged in to {registry} (nothing stored for it in {}, nor in a credential helper they name)",
            searched.join(", ")
        );
        return Ok(());
    }
    for removal in &removals {
        let keys: Vec<String> = removal.keys.iter().map(|key| format!("`{key}`")).collect();
        note!("removed {} from {}", keys.join(", "), removal.from);
    }
    note!("logged out of {registry}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_hosts() {
        assert_eq!(registry_name("https://ghcr.io/v2/").unwrap(), "ghcr.io");
        assert_eq!(registry_name("localhost:5000").unwrap(), "localhost:5000");
        assert_eq!(
            registry_name("https://index.docker.io/v1/").unwrap(),
            "docker.io"
        );
        assert!(registry_name("https://").is_err());
        assert!(registry_name("user@host").is_err());
    }
}
