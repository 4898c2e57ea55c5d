//! `hoist cache info` and `hoist cache prune`: the cache directory builds share.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::CacheArgs;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hoist_layers::prune::{CacheEntry, CacheInfo, PrunePolicy, PruneReport};

/// `hoist cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show the cache's size, entries and oldest use.
    Info(InfoArgs),
    /// Remove least recently used entries (never one a running build holds).
    Prune(PruneArgs),
}

/// `hoist cache info` flags.
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    cache: CacheArgs,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
}

/// `hoist cache prune` flags.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    cache: CacheArgs,
    /// Remove least recently used entries until the cache is at most this big
    /// (bytes, or with a unit: KB MB GB TB = 1000^n, KiB MiB GiB TiB = 1024^n).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: Option<u64>,
    /// Remove entries not used for this long (e.g. 30d, 12h, 1d12h, 90m; s m h d w).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    older_than: Option<Duration>,
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs a `hoist cache` subcommand.
pub fn run(command: &CacheCommand) -> Result<()> {
    match command {
        CacheCommand::Info(args) => info(args),
        CacheCommand::Prune(args) => prune(args),
    }
}

fn info(args: &InfoArgs) -> Result<()> {
    let root = args
        .cache
        .cache_dir
        .clone()
        .unwrap_or_else(super::default_cache_dir);
    let info = hoist_layers::prune::cache_info(&root)
        .with_context(|| format!("reading the cache directory {}", root.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info_json(&info))?);
        return Ok(());
    }
    println!("cache: {}", root.display());
    println!(
        "entries: {} (blobs with their SBOM scans and push records), {} ({} layer-cache records)",
        info.entries.len(),
        human_size(info.size()),
        info.records
    );
    let now = SystemTime::now();
    if let (Some(oldest), Some(newest)) = (info.oldest_use(), info.newest_use()) {
        println!("oldest use: {} ({})", rfc3339(oldest), ago(now, oldest));
        println!("newest use: {} ({})", rfc3339(newest), ago(now, newest));
    }
    let held = info.entries.iter().filter(|entry| entry.in_use).count();
    println!(
        "in use: {held} entries held by {} running process(es)",
        info.live_processes
    );
    Ok(())
}

fn prune(args: &PruneArgs) -> Result<()> {
    anyhow::ensure!(
        args.max_size.is_some() || args.older_than.is_some(),
        "hoist cache prune needs --max-size SIZE and/or --older-than AGE (nothing to decide \
         by otherwise)"
    );
    let root = args
        .cache
        .cache_dir
        .clone()
        .unwrap_or_else(super::default_cache_dir);
    let policy = PrunePolicy {
        max_size: args.max_size,
        older_than: args.older_than,
        dry_run: args.dry_run,
    };
    let report = hoist_layers::prune::prune(&root, &policy, SystemTime::now())
        .with_context(|| format!("pruning the cache directory {}", root.display()))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&prune_json(&report, &policy))?
        );
        return Ok(());
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let freed: u64 = report.removed.iter().map(|entry| entry.size).sum();
    for entry in &report.removed {
        println!(
            "{verb} {} ({}, last used {})",
            entry.digest,
            human_size(entry.size),
            rfc3339(entry.last_use)
        );
    }
    for entry in &report.kept_in_use {
        println!(
            "kept {} ({}): a running build holds it",
            entry.digest,
            human_size(entry.size)
        );
    }
    println!(
        "{verb} {} entries, {}; {} entries, {} remain",
        report.removed.len(),
        human_size(freed),
        report.remaining_entries,
        human_size(report.remaining_size)
    );
    Ok(())
}

fn entry_json(entry: &CacheEntry) -> serde_json::Value {
    serde_json::json!({
        "digest": entry.digest.as_str(),
        "size": entry.size,
        "last_use": rfc3339(entry.last_use),
        "in_use": entry.in_use,
    })
}

fn info_json(info: &CacheInfo) -> serde_json::Value {
    serde_json::json!({
        "cache_dir": info.root.display().to_string(),
        "entries": info.entries.len(),
        "size": info.size(),
        "records": info.records,
        "oldest_use": info.oldest_use().map(rfc3339),
        "newest_use": info.newest_use().map(rfc3339),
        "in_use": info.entries.iter().filter(|entry| entry.in_use).count(),
        "running_processes": info.live_processes,
        "blobs": info.entries.iter().map(entry_json).collect::<Vec<_>>(),
    })
}

fn prune_json(report: &PruneReport, policy: &PrunePolicy) -> serde_json::Value {
    serde_json::json!({
        "dry_run": policy.dry_run,
        "removed": report.removed.iter().map(entry_json).collect::<Vec<_>>(),
        "freed": report.removed.iter().map(|entry| entry.size).sum::<u64>(),
        "kept_in_use": report.kept_in_use.iter().map(entry_json).collect::<Vec<_>>(),
        "records_removed": report.records_removed,
        "stale_leases_removed": report.stale_leases_removed,
        "remaining_entries": report.remaining_entries,
        "remaining_size": report.remaining_size,
    })
}

fn rfc3339(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    hoist::oci::canonical::rfc3339(seconds)
}

fn ago(now: SystemTime, then: SystemTime) -> String {
    let seconds = now.duration_since(then).map_or(0, |d| d.as_secs());
    match seconds {
        0..120 => format!("{seconds} s ago"),
        120..7200 => format!("{} min ago", seconds / 60),
        7200..172_800 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `--max-size`: a size as `[budget]` reads them (`10GB`, `1.5GiB`, `4096`; SI units are
/// powers of 1000, IEC units powers of 1024), clap naming the flag.
fn parse_size(text: &str) -> Result<u64, String> {
    hoist::budget::parse_size("--max-size", text).map_err(|err| match err {
        hoist::error::Error::InvalidValue { message, .. } => message,
        other => other.to_string(),
    })
}

/// `30d`, `12h`, `1d12h`, `90m`, `2w`, `45s`: whole numbers, each with a unit.
fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty age: expected e.g. 30d or 12h".into());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "'{text}' is not an age: expected numbers each followed by a unit (s, m, h, \
                 d, w), e.g. 30d or 1d12h"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("'{text}' is too large"))?;
        let unit_len = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - digits);
        let unit = &rest[digits..digits + unit_len];
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "" => {
                return Err(format!(
                    "'{text}' needs a unit after {number}: s, m, h, d or w (e.g. 30d)"
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit '{other}' in '{text}' (use s, m, h, d or w)"
                ));
            }
        };
        total = number
            .checked_mul(seconds)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("'{text}' is too large"))?;
        rest = &rest[digits + unit_len..];
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_si_and_iec_units() {
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("10gb"), Ok(10_000_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        for bad in ["", "GB", "10XB", "ten", "1.2.3GB", "-1GB", "99999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("10XB").unwrap_err().contains("'xb'"));
    }

    #[test]
    fn ages_in_seconds_to_weeks() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_hours(30 * 24)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_hours(12)));
        assert_eq!(parse_age("1d12h"), Ok(Duration::from_hours(36)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_hours(14 * 24)));
        assert_eq!(parse_age("45s"), Ok(Duration::from_secs(45)));
        for bad in [
            "",
            "30",
            "d",
            "30days",
            "1.5d",
            "30y",
            "99999999999999999999d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        assert!(parse_age("30").unwrap_err().contains("needs a unit"));
    }

    #[test]
    fn sizes_print_in_iec_units() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }
}
