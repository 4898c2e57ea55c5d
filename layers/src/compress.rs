//! Layer compression: a reproducible parallel gzip encoder, and zstd in libzstd's
//! multithreaded framing ([`crate::zstdmt`]).
//!
//! # Parallel gzip, pigz style
//!
//! The input is cut into fixed [`GZIP_BLOCK_SIZE`] blocks. Each block is compressed by
//! its own raw deflate stream, primed with the previous 32 KiB of *input* as a preset
//! dictionary, and ended with a sync flush (the last block: a finishing flush). Because
//! a sync flush leaves the output byte-aligned with no final-block bit set, the
//! per-block outputs concatenate into one valid deflate stream, and back-references
//! into the dictionary land on the bytes the decoder has just produced.
//!
//! Every block's bytes depend only on (its input, the 32 KiB before it, level, whether
//! it is last), never on which thread ran it or when, so the output is identical for any
//! thread count, including the single-threaded path that compresses inline. Blocks are
//! cut by byte count alone, so how callers split their writes does not matter either.
//! The CRC-32 is computed over the input on the producer thread (crc32fast runs at
//! many GB/s, far ahead of deflate).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use flate2::{Compress, FlushCompress, Status};

/// Input bytes per independently compressed gzip block.
///
/// pigz uses 128 KiB. Each block pays for hashing its 32 KiB dictionary, so larger blocks
/// are cheaper per byte; measured single-threaded on a 64 MiB tar of Rust crate sources,
/// 256 KiB ran 3–8% faster than 128 KiB at levels 1 and 6 with output sizes within 0.1%
/// (either way within 0.15% of one unbroken deflate stream), while 512 KiB and 1 MiB
/// gained little more at level 6 and double the memory each worker holds. Changing this
/// value changes every gzip layer digest.
pub const GZIP_BLOCK_SIZE: usize = 256 * 1024;

/// Deflate's window: the most a back-reference can reach, so all a block needs to see of
/// its predecessor.
const DICT_SIZE: usize = 32 * 1024;

/// gzip member header: magic, CM=deflate, FLG=0 (no name, comment or extra field),
/// MTIME=0 (the layer's timestamps live in the tar, not here), then XFL and OS.
const GZIP_HEADER_PREFIX: [u8; 8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0];

/// OS byte 255, "unknown", as flate2's `GzBuilder` writes it: the bytes must not depend on
/// the machine that built the layer.
const GZIP_OS_UNKNOWN: u8 = 255;

/// The gzip header bytes for `level`.
///
/// XFL follows flate2's `GzBuilder` (2 for level 9, 4 for levels 0 and 1, else 0), so a
/// single-block stream matches what `flate2::GzEncoder` would frame it with.
fn gzip_header(level: u32) -> [u8; 10] {
    let mut header = [0; 10];
    header[..8].copy_from_slice(&GZIP_HEADER_PREFIX);
    header[8] = match level {
        9.. => 2,
        0 | 1 => 4,
        _ => 0,
    };
    header[9] = GZIP_OS_UNKNOWN;
    header
}

/// An output size that deflate cannot exceed for `input_len` bytes (zlib's
/// `deflateBound` is about n + n/4096 + 13; sync-flush markers add 5 bytes), so every
/// block is compressed by exactly one call.
fn output_bound(input_len: usize) -> usize {
    input_len + input_len / 8 + 4096
}

/// Compresses one block as described in the module docs, into `out` (cleared).
///
/// Two things here are load-bearing for reproducibility, both measured with zlib-rs:
/// a compressor reused through `reset()` can give different bytes for the same block
/// than a fresh one (state survives the reset), and deflate's output can change with
/// how much output space each call gets. So every block gets a fresh compressor and
/// one call with an output slice whose length depends only on the input length, never
/// on a recycled buffer's capacity.
fn compress_block(
    level: u32,
    dictionary: &[u8],
    input: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut compressor = Compress::new(flate2::Compression::new(level), false);
    if !dictionary.is_empty() {
        compressor
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    out.clear();
    out.resize(output_bound(input.len()), 0);
    let status = compressor
        .compress(input, out, flush)
        .map_err(io::Error::other)?;
    let written = compressor.total_out() as usize;
    let complete = compressor.total_in() as usize == input.len()
        && written < out.len()
        && if last {
            status == Status::StreamEnd
        } else {
            status == Status::Ok
        };
    if !complete {
        // Cannot happen within the bound; failing beats writing a truncated stream.
        return Err(io::Error::other(format!(
            "deflate did not finish a {}-byte block in {} bytes of output",
            input.len(),
            out.len()
        )));
    }
    out.truncate(written);
    Ok(())
}

/// A block on its way to a worker, with buffers recycled from earlier blocks.
struct Job {
    seq: u64,
    input: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    out: Vec<u8>,
}

/// A compressed block coming back, with its input buffers for reuse.
struct Done {
    seq: u64,
    input: Vec<u8>,
    dictionary: Vec<u8>,
    out: io::Result<Vec<u8>>,
}

fn worker(level: u32, jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>) {
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(mut job) = job else { return };
        // A panic must come back as an error: the producer waits for every sequence
        // number in order and would otherwise wait forever for this one.
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            compress_block(level, &job.dictionary, &job.input, job.last, &mut job.out)
        }));
        let reply = Done {
            seq: job.seq,
            input: job.input,
            dictionary: job.dictionary,
            out: result
                .unwrap_or_else(|_| Err(io::Error::other("gzip compression worker panicked")))
                .map(|()| job.out),
        };
        if done.send(reply).is_err() {
            return;
        }
    }
}

/// Where blocks get compressed.
enum Engine {
    /// `threads <= 1`: on the calling thread, no pipeline.
    Inline { level: u32, out: Vec<u8> },
    /// A worker pool fed through a queue; results are reordered before writing.
    Pool(Pool),
}

struct Pool {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    /// Blocks sent but not yet written, which bounds memory to a few blocks per worker.
    in_flight: usize,
    max_in_flight: usize,
    next_seq: u64,
    next_to_write: u64,
    finished: BTreeMap<u64, Vec<u8>>,
    spare_inputs: Vec<Vec<u8>>,
    spare_outputs: Vec<Vec<u8>>,
}

impl Pool {
    fn new(level: u32, threads: usize) -> io::Result<Pool> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut workers = Vec::with_capacity(threads);
        for index in 0..threads {
            let jobs = Arc::clone(&job_rx);
            let done = done_tx.clone();
            let handle = thread::Builder::new()
                .name(format!("hoist-gzip-{index}"))
                .spawn(move || worker(level, &jobs, &done))?;
            workers.push(handle);
        }
        Ok(Pool {
            jobs: Some(job_tx),
            done: done_rx,
            workers,
            in_flight: 0,
            max_in_flight: 2 * threads,
            next_seq: 0,
            next_to_write: 0,
            finished: BTreeMap::new(),
            spare_inputs: Vec::new(),
            spare_outputs: Vec::new(),
        })
    }

    fn submit(
        &mut self,
        input: Vec<u8>,
        dictionary: Vec<u8>,
        last: bool,
        spare_dictionaries: &mut Vec<Vec<u8>>,
        sink: &mut impl Write,
    ) -> io::Result<()> {
        while self.in_flight >= self.max_in_flight {
            self.receive(spare_dictionaries, sink)?;
        }
        let job = Job {
            seq: self.next_seq,
            input,
            dictionary,
            last,
            out: self.spare_outputs.pop().unwrap_or_default(),
        };
        self.jobs
            .as_ref()
            .expect("jobs are only submitted before shutdown")
            .send(job)
            .map_err(|_| io::Error::other("gzip compression workers exited"))?;
        self.next_seq += 1;
        self.in_flight += 1;
        Ok(())
    }

    /// Waits for one finished block and writes out every block that is now next in order.
    fn receive(
        &mut self,
        spare_dictionaries: &mut Vec<Vec<u8>>,
        sink: &mut impl Write,
    ) -> io::Result<()> {
        let done = self
            .done
            .recv()
            .map_err(|_| io::Error::other("gzip compression workers exited"))?;
        let mut input = done.input;
        input.clear();
        self.spare_inputs.push(input);
        spare_dictionaries.push(done.dictionary);
        self.finished.insert(done.seq, done.out?);
        while let Some(out) = self.finished.remove(&self.next_to_write) {
            sink.write_all(&out)?;
            self.spare_outputs.push(out);
            self.next_to_write += 1;
            self.in_flight -= 1;
        }
        Ok(())
    }

    fn drain(
        &mut self,
        spare_dictionaries: &mut Vec<Vec<u8>>,
        sink: &mut impl Write,
    ) -> io::Result<()> {
        while self.in_flight > 0 {
            self.receive(spare_dictionaries, sink)?;
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends the workers' loops; joining keeps threads from outliving
        // the encoder. Worker panics were already turned into errors.
        self.jobs = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// A gzip encoder that compresses blocks on `threads` workers and writes them in order.
///
/// See the module docs for why its output is identical for every thread count.
pub(crate) struct ParallelGzEncoder<W: Write> {
    inner: W,
    engine: Engine,
    block: Vec<u8>,
    /// The last 32 KiB of the previous block's input (empty before the first block).
    dictionary: Vec<u8>,
    spare_dictionaries: Vec<Vec<u8>>,
    crc: crc32fast::Hasher,
    input_len: u64,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// Writes the gzip header to `inner` and starts the workers (none if `threads <= 1`).
    pub(crate) fn new(mut inner: W, level: u32, threads: usize) -> io::Result<Self> {
        assert!(
            level <= 9,
            "gzip level {level} out of range (validated by callers)"
        );
        inner.write_all(&gzip_header(level))?;
        let engine = if threads <= 1 {
            Engine::Inline {
                level,
                out: Vec::new(),
            }
        } else {
            Engine::Pool(Pool::new(level, threads)?)
        };
        Ok(ParallelGzEncoder {
            inner,
            engine,
            block: Vec::with_capacity(GZIP_BLOCK_SIZE),
            dictionary: Vec::new(),
            spare_dictionaries: Vec::new(),
            crc: crc32fast::Hasher::new(),
            input_len: 0,
        })
    }

    /// Compresses the buffered block and hands the next block a fresh buffer.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let mut next_dictionary = self.spare_dictionaries.pop().unwrap_or_default();
        next_dictionary.clear();
        if !last {
            let tail = self.block.len().saturating_sub(DICT_SIZE);
            next_dictionary.extend_from_slice(&self.block[tail..]);
        }
        let dictionary = std::mem::replace(&mut self.dictionary, next_dictionary);
        match &mut self.engine {
            Engine::Inline { level, out } => {
                compress_block(*level, &dictionary, &self.block, last, out)?;
                self.inner.write_all(out)?;
                self.block.clear();
                self.spare_dictionaries.push(dictionary);
            }
            Engine::Pool(pool) => {
                let mut fresh = pool.spare_inputs.pop().unwrap_or_default();
                fresh.reserve(GZIP_BLOCK_SIZE);
                let input = std::mem::replace(&mut self.block, fresh);
                pool.submit(
                    input,
                    dictionary,
                    last,
                    &mut self.spare_dictionaries,
                    &mut self.inner,
                )?;
            }
        }
        Ok(())
    }

    /// Compresses what is left, writes the gzip trailer and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        if let Engine::Pool(pool) = &mut self.engine {
            pool.drain(&mut self.spare_dictionaries, &mut self.inner)?;
        }
        let mut trailer = [0; 8];
        trailer[..4].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        // ISIZE is the input length modulo 2^32, by definition of the format.
        trailer[4..].copy_from_slice(&(self.input_len as u32).to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        drop(self.engine);
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let take = buf.len().min(GZIP_BLOCK_SIZE - self.block.len());
        let taken = &buf[..take];
        self.block.extend_from_slice(taken);
        self.crc.update(taken);
        self.input_len += take as u64;
        // A full block is sent as soon as it fills, so block boundaries depend only on
        // the byte count; the final, possibly empty, block is sent by `finish`.
        if self.block.len() == GZIP_BLOCK_SIZE {
            self.dispatch(false)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing must not cut a block early (that would change the bytes), so only the
        // inner writer is flushed.
        self.inner.flush()
    }
}

/// The compressing stage of the layer pipeline.
pub(crate) enum Encoder<W: Write + Send + 'static> {
    /// gzip, on the calling thread or a worker pool.
    Gzip(ParallelGzEncoder<W>),
    /// zstd in libzstd's multithreaded framing (see [`crate::zstdmt`]).
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write + Send + 'static> Encoder<W> {
    /// An encoder for `compression` (levels already validated) writing to `inner`.
    pub(crate) fn new(
        inner: W,
        compression: crate::spec::Compression,
        threads: usize,
    ) -> io::Result<Self> {
        use crate::spec::Compression;
        Ok(match compression {
            Compression::Gzip { level } => {
                Encoder::Gzip(ParallelGzEncoder::new(inner, level, threads)?)
            }
            Compression::Zstd { level } => {
                Encoder::Zstd(crate::zstdmt::encoder(inner, level, threads)?)
            }
        })
    }

    /// Ends the compressed stream and returns the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write + Send + 'static> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(encoder) => encoder.flush(),
            // zstd's own flush ends a block early, which would make the bytes depend on
            // when callers flush: only the writer underneath is flushed.
            Encoder::Zstd(encoder) => encoder.get_mut().flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::process::{Command, Stdio};

    use super::*;
    use crate::spec::Compression;
    use crate::testutil::Broken;

    /// Text that deflates well, then xorshift noise that does not: both block kinds.
    fn mixed_data(len: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(len);
        let words = ["layer ", "digest ", "manifest ", "tar ", "blob ", "\n"];
        let mut i = 0;
        while data.len() < len / 2 {
            data.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
            i += 1;
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        while data.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        data.truncate(len);
        data
    }

    /// Compresses `data`, writing it in chunks cycling through `chunk_sizes`.
    fn compress(
        data: &[u8],
        compression: Compression,
        threads: usize,
        chunk_sizes: &[usize],
    ) -> Vec<u8> {
        let mut encoder = Encoder::new(Vec::new(), compression, threads).unwrap();
        let mut rest = data;
        for size in chunk_sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            encoder.write_all(chunk).unwrap();
            encoder.flush().unwrap();
            rest = tail;
        }
        encoder.finish().unwrap()
    }

    fn gunzip_with_flate2(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Decompresses with an external tool reading stdin, e.g. `gzip -d -c`.
    fn decompress_with(tool: &str, compressed: &[u8]) -> Vec<u8> {
        let mut child = Command::new(tool)
            .args(["-d", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} must be installed: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let input = compressed.to_vec();
        let feeder = thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(output.status.success(), "{tool} -d failed: {output:?}");
        output.stdout
    }

    #[test]
    fn gzip_bytes_do_not_depend_on_threads_or_write_sizes() {
        let data = mixed_data(6 * GZIP_BLOCK_SIZE + 12_345);
        for level in [1, 6, 9] {
            let gzip = Compression::Gzip { level };
            let reference = compress(&data, gzip, 1, &[usize::MAX]);
            for threads in [2, 3, 8] {
                assert!(
                    compress(&data, gzip, threads, &[usize::MAX]) == reference,
                    "level {level}, {threads} threads"
                );
            }
            let ragged = compress(&data, gzip, 3, &[1, 511, 4096, 200_000, 70_000]);
            assert!(ragged == reference, "level {level}, ragged writes");
            assert!(gunzip_with_flate2(&reference) == data, "level {level}");
            assert!(decompress_with("gzip", &reference) == data, "level {level}");
        }
    }

    /// Pseudo-random letters from a 16-letter alphabet: the data on which zlib-rs showed
    /// a reused compressor and a chunked output giving different bytes for one block.
    fn sixteen_letters(len: usize) -> Vec<u8> {
        let mut state: u64 = 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"abcdefghijklmnop"[(state % 16) as usize]
            })
            .collect()
    }

    #[test]
    fn block_bytes_do_not_depend_on_history_or_buffer_capacity() {
        let data = sixteen_letters(4 * GZIP_BLOCK_SIZE);
        let blocks: Vec<&[u8]> = data.chunks(GZIP_BLOCK_SIZE).collect();
        let dictionary = |i: usize| {
            if i == 0 {
                &[][..]
            } else {
                &blocks[i - 1][GZIP_BLOCK_SIZE - DICT_SIZE..]
            }
        };
        let last = |i: usize| i + 1 == blocks.len();
        let in_order: Vec<Vec<u8>> = (0..blocks.len())
            .map(|i| {
                let mut out = Vec::new();
                compress_block(6, dictionary(i), blocks[i], last(i), &mut out).unwrap();
                out
            })
            .collect();
        // Reverse order, through one recycled buffer far larger than any block needs.
        let mut recycled = Vec::with_capacity(8 << 20);
        for i in (0..blocks.len()).rev() {
            compress_block(6, dictionary(i), blocks[i], last(i), &mut recycled).unwrap();
            assert!(recycled == in_order[i], "block {i} changed with history");
        }
    }

    #[test]
    fn gzip_bytes_are_stable_across_repeated_parallel_runs() {
        let data = sixteen_letters(12 * GZIP_BLOCK_SIZE + 777);
        let gzip = Compression::Gzip { level: 6 };
        let reference = compress(&data, gzip, 1, &[usize::MAX]);
        for threads in [2, 4, 2, 4, 3] {
            assert!(
                compress(&data, gzip, threads, &[usize::MAX]) == reference,
                "{threads} threads"
            );
        }
        assert!(gunzip_with_flate2(&reference) == data);
    }

    #[test]
    fn gzip_framing_is_fixed() {
        let gz = compress(b"hello", Compression::Gzip { level: 6 }, 1, &[usize::MAX]);
        assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let trailer = &gz[gz.len() - 8..];
        assert_eq!(trailer[..4], crc32fast::hash(b"hello").to_le_bytes());
        assert_eq!(trailer[4..], 5u32.to_le_bytes());
        assert_eq!(gzip_header(9)[8], 2);
        assert_eq!(gzip_header(1)[8], 4);
    }

    #[test]
    fn gzip_edge_sizes_round_trip() {
        for len in [
            0,
            1,
            DICT_SIZE,
            GZIP_BLOCK_SIZE,
            2 * GZIP_BLOCK_SIZE,
            GZIP_BLOCK_SIZE + 1,
        ] {
            let data = mixed_data(len);
            for (level, threads) in [(0, 1), (6, 1), (6, 2)] {
                let gz = compress(&data, Compression::Gzip { level }, threads, &[usize::MAX]);
                assert!(gunzip_with_flate2(&gz) == data, "len {len}, level {level}");
                assert!(
                    decompress_with("gzip", &gz) == data,
                    "len {len}, level {level}"
                );
            }
        }
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_threads_or_write_sizes() {
        // Level 1 jobs are 2 MiB: this input spans five of them, with a short last one.
        let data = mixed_data(9 * (1 << 20) + 999);
        let zstd = Compression::Zstd { level: 1 };
        let reference = compress(&data, zstd, 1, &[usize::MAX]);
        assert!(compress(&data, zstd, 2, &[usize::MAX]) == reference);
        assert!(compress(&data, zstd, 1, &[1, 511, 4096, 200_000]) == reference);
        assert!(compress(&data, zstd, 4, &[7, 300_000]) == reference);
        assert!(compress(&data, zstd, 3, &[usize::MAX]) == reference);
        assert!(zstd::decode_all(&reference[..]).unwrap() == data);
        assert!(decompress_with("zstd", &reference) == data);
        for threads in [1, 2] {
            assert!(
                zstd::decode_all(&compress(&[], zstd, threads, &[1])[..])
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[test]
    fn zstd_is_one_frame_with_a_checksum_and_no_content_size() {
        let data = mixed_data(5 * (1 << 20));
        let zst = compress(&data, Compression::Zstd { level: 1 }, 2, &[usize::MAX]);
        assert_eq!(zst[..4], [0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
        // Frame header descriptor: content checksum flag set, no content size field,
        // not single-segment.
        let descriptor = zst[4];
        assert_eq!(descriptor & 0x04, 0x04, "checksum flag");
        assert_eq!(descriptor & 0xe0, 0, "no content size, not single segment");
        let frame = zstd::zstd_safe::find_frame_compressed_size(&zst).unwrap();
        assert_eq!(frame, zst.len(), "exactly one frame");
    }

    #[test]
    fn write_errors_surface_from_workers() {
        // The header write fails right away for gzip.
        assert!(Encoder::new(Broken, Compression::Gzip { level: 6 }, 2).is_err());
        let mut zstd = Encoder::new(Broken, Compression::Zstd { level: 3 }, 2).unwrap();
        let data = mixed_data(4 << 20);
        let result = zstd
            .write_all(&data)
            .and_then(|()| zstd.finish().map(|_| ()));
        assert_eq!(result.unwrap_err().to_string(), "disk on fire");
    }
}
