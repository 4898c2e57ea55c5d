//! The `hoist` command: parse flags, run, map the outcome to an exit code
//! (0 success, 1 failure, 2 bad usage; `diff` and `verify`: 0 same, 1 different,
//! 2 error; see docs/cli.md).

#![forbid(unsafe_code)] // see src/lib.rs

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // reqwest is built without a default TLS provider (aws-lc-rs costs minutes of C
    // build); ring is ours. Installing fails only if one is already set, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", cli::describe_error(&error));
            ExitCode::from(1)
        }
    }
}
