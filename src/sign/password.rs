//! A key's password: `HOIST_KEY_PASSWORD`, else `COSIGN_PASSWORD` (what cosign reads,
//! so one CI secret serves both), else a prompt on the terminal without echo. Never
//! printed. Without any of them (CI with no variable set) it is an error, not an
//! empty password: a key encrypted with "" by accident is worse than a failed job.

use std::io::IsTerminal as _;

use super::SignError;

/// Environment variables read, in order.
pub const PASSWORD_VARIABLES: [&str; 2] = ["HOIST_KEY_PASSWORD", "COSIGN_PASSWORD"];

/// Why the password is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Encrypting a new key: a prompt asks twice.
    NewKey,
    /// Decrypting a key file.
    Unlock,
}

/// The password from the environment (a set variable wins, even when empty: cosign
/// takes `COSIGN_PASSWORD=""` as an empty password), else from the terminal.
pub fn password(purpose: Purpose, key_file: &str) -> Result<Vec<u8>, SignError> {
    for variable in PASSWORD_VARIABLES {
        if let Some(value) = std::env::var_os(variable) {
            return value
                .into_string()
                .map(String::into_bytes)
                .map_err(|_| SignError::Password(format!("{variable} is not valid UTF-8")));
        }
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(SignError::Password(format!(
            "no password for {key_file}: set HOIST_KEY_PASSWORD (or COSIGN_PASSWORD); there is no terminal to ask on"
        )));
    }
    let prompt_error =
        |e: std::io::Error| SignError::Password(format!("reading the password: {e}"));
    match purpose {
        Purpose::Unlock => {
            let text = rpassword::prompt_password(format!("Enter password for {key_file}: "))
                .map_err(prompt_error)?;
            Ok(text.into_bytes())
        }
        Purpose::NewKey => {
            let first = rpassword::prompt_password(format!("Enter password for {key_file}: "))
                .map_err(prompt_error)?;
            let again =
                rpassword::prompt_password("Enter password again: ").map_err(prompt_error)?;
            if first != again {
                return Err(SignError::Password(
                    "the passwords do not match".to_string(),
                ));
            }
            Ok(first.into_bytes())
        }
    }
}
