//! `[budget]` as settings: the limits and how they are written (`250MB`, `10%`). The
//! check itself is the `budget` module's, which the job runs after the build and
//! before any upload; the plan only carries the limits.

use crate::error::{Error, Result};

/// Resolved limits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Budget {
    /// Bytes, compressed.
    pub max_size: Option<u64>,
    /// Bytes, uncompressed.
    pub max_unpacked: Option<u64>,
    /// Percent of the previous image's compressed size.
    pub max_growth: Option<f64>,
}

impl Budget {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.max_size.is_some() || self.max_unpacked.is_some() || self.max_growth.is_some()
    }
}

/// `"250MB"`, `"1.5GiB"`, `"800000"`: decimal (kB, MB, GB, TB) and binary (KiB, MiB,
/// GiB, TiB) units, case-insensitive; a bare number is bytes.
pub fn parse_size(field: &str, text: &str) -> Result<u64> {
    let invalid = |message: String| Error::InvalidValue {
        field: field.to_string(),
        message,
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        invalid(format!(
            "`{text}` is not a size: expected a number and a unit, such as 250MB, 1.5GiB or \
             800000 (bytes)"
        ))
    })?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(invalid(format!(
                "unknown size unit '{other}' in `{text}` (use B, KB, MB, GB, TB, KiB, MiB, GiB \
                 or TiB)"
            )));
        }
    };
    let bytes = number * factor;
    // `u64::MAX as f64` rounds up to 2^64, which is itself too large.
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(invalid(format!(
            "`{text}` is too large (at most 2^64 - 1 bytes)"
        )));
    }
    Ok(bytes.round() as u64)
}

/// `"10%"` (or `"10"`): a percentage.
pub fn parse_percent(field: &str, text: &str) -> Result<f64> {
    let number = text.trim().trim_end_matches('%').trim();
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| Error::InvalidValue {
            field: field.to_string(),
            message: format!("`{text}`: expected a percentage such as 10%"),
        })
}
