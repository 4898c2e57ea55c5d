//! zstd on every core, with bytes that do not depend on the number of workers.
//!
//! # Framing
//!
//! Every zstd layer is compressed by libzstd's multithreaded mode (`ZSTD_c_nbWorkers`
//! at least 1, even for `--jobs 1`): the input is cut into jobs of [`job_size`] bytes,
//! each job compressed by a worker, each starting with the last *overlap* bytes of the
//! previous job's input loaded as history (libzstd's default overlap for the level's
//! strategy: a window / 8 at level 3), and the job outputs concatenated as the blocks of
//! **one** zstd frame with a content checksum and no content size. The job boundaries
//! depend only on the byte count and the level, so for any worker count ≥ 1 the output
//! is identical; measured on a 100 MiB tree and pinned by the tests. libzstd's
//! single-threaded mode (`nbWorkers = 0`) gives different bytes (one unbroken window),
//! which is why it is never used: the digest would then depend on `--jobs`.
//!
//! The job size is set explicitly rather than left to libzstd's default (which today
//! computes the same value), so a change of that default cannot change digests
//! silently: four times the level's window, at least 1 MiB (8 MiB at level 3).
//! Independent frames per fixed block (the other candidate) were measured and dropped:
//! they lose every match across a block boundary, 1.6% of the output at 4 MiB blocks,
//! 0.8% at 8 MiB, where the overlap costs 0.3% (see docs/performance.md).

use std::io::{self, Write};

use zstd::zstd_safe::CParameter;

/// libzstd's window log for `level` with the input size unknown (the first row of
/// `ZSTD_defaultCParameters` in `lib/compress/clevels.h`, zstd 1.5.7; levels below 1
/// use the row for negative levels, 0 means level 3).
fn window_log(level: i32) -> u32 {
    match level {
        0 | 3..=8 => 21,
        ..=1 => 19,
        2 => 20,
        9..=16 => 22,
        17..=19 => 23,
        20 => 25,
        21 => 26,
        _ => 27,
    }
}

/// Input bytes per job at `level`: 4 × the window, at least 1 MiB, as libzstd's
/// `ZSTDMT_computeTargetJobLog` would choose. Part of what zstd layer digests depend on.
pub fn job_size(level: i32) -> u32 {
    1 << (window_log(level) + 2).max(20)
}

/// The encoder every zstd layer uses: `level`, a content checksum (as the `zstd` CLI
/// writes by default), no content size (the stream length is not known up front),
/// libzstd's multithreaded framing with [`job_size`] jobs on `workers` threads (at least
/// one; see the module docs for why the count never shows in the bytes).
pub(crate) fn encoder<W: Write>(
    inner: W,
    level: i32,
    workers: usize,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
    encoder.include_checksum(true)?;
    encoder.include_contentsize(false)?;
    let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
    encoder.multithread(workers)?;
    encoder.set_parameter(CParameter::JobSize(job_size(level)))?;
    Ok(encoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_sizes_follow_the_window() {
        assert_eq!(job_size(3), 8 << 20);
        assert_eq!(job_size(0), 8 << 20);
        assert_eq!(job_size(1), 2 << 20);
        assert_eq!(job_size(-5), 2 << 20);
        assert_eq!(job_size(19), 32 << 20);
        assert_eq!(job_size(22), 512 << 20);
    }

    #[test]
    fn the_job_size_is_libzstds_own_default() {
        // Setting JobSize(0) asks libzstd for its default: if it ever differs from ours,
        // the explicit value is what keeps digests stable, and this test says so.
        let data: Vec<u8> = (0..(20u32 << 20))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 % 32 + b'a')
            .collect();
        for level in [1, 3, 9] {
            let ours = compress(&data, level, 2, None);
            let default = compress(&data, level, 2, Some(0));
            assert!(ours == default, "level {level}");
        }
    }

    fn compress(data: &[u8], level: i32, workers: usize, job: Option<u32>) -> Vec<u8> {
        let mut encoder = encoder(Vec::new(), level, workers).unwrap();
        if let Some(job) = job {
            encoder.set_parameter(CParameter::JobSize(job)).unwrap();
        }
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }
}
