//! The back half of the layer pipeline: the tar stream's sha256 (the diff_id), the
//! compressor, and the blob writer (which hashes the compressed bytes: the digest).
//!
//! With more than one thread allowed, the tar stream goes through an [`Offload`] to a
//! thread that feeds the compressor and hashes and writes the compressed blob, while
//! the calling thread keeps walking, reading and hashing (file contents for the layer
//! key and the whole stream for the diff_id, in one interleaved pass), reading
//! straight into the hand-off's buffers. Measured on a 100 MiB tree with zstd -3 on
//! 2 cores, the calling thread doing all three SHA-256 passes one after the other was
//! the limit beside libzstd's workers (docs/performance.md); a third stage for the
//! blob measured slower (one more copy and hand-off per chunk, on cores already busy).
//! The bytes do not change: every stage sees the same sequence of bytes in the same
//! order, and every compressor's output depends only on that sequence.

use std::io::{self, Write};
use std::mem;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::{self, JoinHandle};

use crate::blob::BlobWriter;
use crate::compress::Encoder;
use crate::hash::Digest;
use crate::lanes::{self, Lane};
use crate::spec::Compression;

/// Bytes handed over at a time, and the most a file read takes at once: each hand-off
/// may wake a thread, and 1 MiB measured faster than 256 KiB.
pub(crate) const CHUNK: usize = 1 << 20;

/// Full chunks that may wait for the next stage.
const QUEUED: usize = 4;

/// The finished back half: the blob (compressed and hashed, not yet committed) and the
/// diff_id.
pub(crate) type Finished = (BlobWriter, Digest);

/// Where the layer's tar stream goes. `Write` takes the stream (headers, padding);
/// file content is read into [`LayerSink::space`] and added with
/// [`LayerSink::commit`]; [`LayerSink::finish`] ends it.
///
/// The stream's sha256 (the diff_id) is taken here, on the calling thread, not by the
/// stage: file content is then hashed into the diff_id and into the file's own hash
/// (the layer key) in one interleaved pass ([`crate::lanes`]), which costs about 1.2
/// times one of the two (docs/design.md "Two SHA-256 streams at once").
pub(crate) struct LayerSink {
    diff_id: Lane,
    back: Back,
}

/// What the stream is handed to once hashed.
enum Back {
    /// One thread allowed: everything on the calling thread; file content is read into
    /// the buffer and written from there.
    Inline(Box<Encoder<BlobWriter>>, Vec<u8>),
    /// Compressing and writing (and hashing) the blob on a thread of its own.
    Threaded(Offload<Encoder<BlobWriter>>),
}

impl LayerSink {
    /// A sink compressing with `compression` on `threads` threads into `blob`.
    pub(crate) fn new(
        blob: BlobWriter,
        compression: Compression,
        threads: usize,
    ) -> io::Result<LayerSink> {
        let encoder = Encoder::new(blob, compression, threads)?;
        let back = if threads <= 1 {
            Back::Inline(Box::new(encoder), vec![0; CHUNK])
        } else {
            Back::Threaded(Offload::start(encoder, "tar")?)
        };
        Ok(LayerSink {
            diff_id: Lane::default(),
            back,
        })
    }

    /// Ends the stream: the blob with every byte compressed into it, and the diff_id.
    pub(crate) fn finish(self) -> io::Result<Finished> {
        let encoder = match self.back {
            Back::Inline(encoder, _) => *encoder,
            Back::Threaded(offload) => offload.finish()?,
        };
        let diff_id = Digest::from_sha256_bytes(&self.diff_id.finalize());
        Ok((encoder.finish()?, diff_id))
    }

    /// Space for up to `max` (≥ 1) bytes of the stream, to read into; then
    /// [`LayerSink::commit`] with the count read.
    pub(crate) fn space(&mut self, max: usize) -> &mut [u8] {
        match &mut self.back {
            Back::Inline(_, buf) => {
                let len = buf.len().min(max);
                &mut buf[..len]
            }
            Back::Threaded(offload) => offload.space(max),
        }
    }

    /// Adds the first `len` bytes of the last [`LayerSink::space`] to the stream:
    /// shows them to `seen`, then hashes them into the diff_id and into `content` at
    /// once.
    pub(crate) fn commit(
        &mut self,
        len: usize,
        content: &mut Lane,
        seen: impl FnOnce(&[u8]),
    ) -> io::Result<()> {
        let landed = match &self.back {
            Back::Inline(_, buf) => &buf[..len],
            Back::Threaded(offload) => &offload.chunk[offload.filled..offload.filled + len],
        };
        seen(landed);
        lanes::update_both(&mut self.diff_id, content, landed);
        match &mut self.back {
            Back::Inline(encoder, buf) => encoder.write_all(&buf[..len]),
            Back::Threaded(offload) => offload.commit(len),
        }
    }
}

impl Write for LayerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = match &mut self.back {
            Back::Inline(encoder, _) => encoder.write(buf)?,
            Back::Threaded(offload) => offload.write(buf)?,
        };
        // Only what was taken is hashed, so short writes stay correct.
        self.diff_id.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is held back that a flush could change: the compressors choose their
        // own block boundaries, and the blob is flushed when it is finished.
        Ok(())
    }
}

/// What a writer sends its stage.
enum Message {
    /// The next bytes of the stream: a buffer and how many of its bytes are filled.
    Chunk(Vec<u8>, usize),
    /// The stream is complete. (A queue closed without this means the build failed.)
    End,
}

/// A writer whose bytes are written to `W` on a thread of its own, in [`CHUNK`]-byte
/// buffers through a bounded queue; [`Offload::finish`] returns `W` once it has taken
/// every byte. Memory stays bounded: a new buffer is made only when none came back
/// emptied, so at most [`QUEUED`] + 3 exist (queued, being sent, being written, being
/// filled).
pub(crate) struct Offload<W> {
    /// The chunk being filled (always [`CHUNK`] bytes long), filled up to `filled`.
    chunk: Vec<u8>,
    filled: usize,
    /// `None` once the end was sent or the stage failed.
    queue: Option<SyncSender<Message>>,
    emptied: Receiver<Vec<u8>>,
    stage: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> Offload<W> {
    /// Starts the thread (named after `what` it writes) writing to `inner`.
    fn start(inner: W, what: &str) -> io::Result<Offload<W>> {
        let (queue, queued) = mpsc::sync_channel(QUEUED);
        let (give_back, emptied) = mpsc::channel();
        let stage = thread::Builder::new()
            .name(format!("hoist-layer-{what}"))
            .spawn(move || run_stage(inner, &queued, &give_back))?;
        Ok(Offload {
            chunk: vec![0; CHUNK],
            filled: 0,
            queue: Some(queue),
            emptied,
            stage: Some(stage),
        })
    }

    /// Hands every byte to the stage and returns its writer once it has written them.
    fn finish(mut self) -> io::Result<W> {
        if self.filled > 0 {
            let last = mem::take(&mut self.chunk);
            self.send(Message::Chunk(last, self.filled))?;
        }
        self.send(Message::End)?;
        self.join()
    }
}

impl<W> Offload<W> {
    fn space(&mut self, max: usize) -> &mut [u8] {
        let end = CHUNK.min(self.filled.saturating_add(max));
        &mut self.chunk[self.filled..end]
    }

    /// Counts `len` more bytes of the chunk as filled; a full chunk goes to the stage
    /// (so the chunk being filled always has space).
    fn commit(&mut self, len: usize) -> io::Result<()> {
        self.filled += len;
        if self.filled < CHUNK {
            return Ok(());
        }
        let next = self.emptied.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let full = mem::replace(&mut self.chunk, next);
        self.filled = 0;
        self.send(Message::Chunk(full, CHUNK))
    }

    fn send(&mut self, message: Message) -> io::Result<()> {
        let sent = self
            .queue
            .as_ref()
            .is_some_and(|queue| queue.send(message).is_ok());
        if sent {
            return Ok(());
        }
        // The stage stopped early: its error is the one to report.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(io::Error::other("a layer writing thread stopped early")),
        }
    }

    /// Closes the queue and waits for the stage's result.
    fn join(&mut self) -> io::Result<W> {
        self.queue = None;
        match self.stage.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("a layer writing thread panicked")),
            None => Err(io::Error::other("a layer writing thread already ended")),
        }
    }
}

impl<W> Write for Offload<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let space = self.space(buf.len());
        let take = space.len();
        space.copy_from_slice(&buf[..take]);
        self.commit(take)?;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        // The stage writes whole chunks; `finish` hands over the rest.
        Ok(())
    }
}

impl<W> Drop for Offload<W> {
    fn drop(&mut self) {
        // A build that failed before `finish`: closing the queue without `End` stops the
        // stage; joining keeps it from outliving the build (a temp blob it held is
        // deleted when dropped).
        if self.stage.is_some() {
            let _ = self.join();
        }
    }
}

/// A stage's loop: write every chunk in order, hand the buffer back.
fn run_stage<W: Write>(
    mut inner: W,
    queued: &Receiver<Message>,
    give_back: &Sender<Vec<u8>>,
) -> io::Result<W> {
    loop {
        match queued.recv() {
            Ok(Message::Chunk(chunk, filled)) => {
                inner.write_all(&chunk[..filled])?;
                // The writer may have finished already; then the buffer is freed.
                let _ = give_back.send(chunk);
            }
            Ok(Message::End) => return Ok(inner),
            Err(_) => {
                return Err(io::Error::other(
                    "the layer's stream ended without being finished",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testutil::Broken;

    fn counting(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn offloaded_bytes_arrive_whole_and_in_order() {
        let data = counting(5 * CHUNK + 777);
        let mut offload = Offload::start(Vec::new(), "test").unwrap();
        let mut rest = &data[..];
        // Ragged writes, and reads landed in place, across chunk boundaries.
        for (i, size) in [1, CHUNK - 1, 3, 2 * CHUNK, 100_000]
            .iter()
            .cycle()
            .enumerate()
        {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*size).min(rest.len()));
            if i % 2 == 0 {
                offload.write_all(piece).unwrap();
            } else {
                let mut landed = 0;
                while landed < piece.len() {
                    let space = offload.space(piece.len() - landed);
                    let len = space.len();
                    space.copy_from_slice(&piece[landed..landed + len]);
                    offload.commit(len).unwrap();
                    landed += len;
                }
            }
            rest = tail;
        }
        assert!(offload.finish().unwrap() == data);
    }

    #[test]
    fn the_stage_error_is_the_one_reported() {
        let data = counting((QUEUED + 4) * CHUNK);
        let mut offload = Offload::start(Broken, "test").unwrap();
        // The queue holds a few chunks: a later write finds the stage gone.
        let err = offload.write_all(&data).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");

        let mut offload = Offload::start(Broken, "test").unwrap();
        offload.write_all(b"a little").unwrap();
        let Err(err) = offload.finish() else {
            panic!("a broken writer finished")
        };
        assert_eq!(err.to_string(), "disk on fire");
    }

    /// A writer that takes everything, holding `_alive` while it exists.
    struct Held {
        _alive: Arc<()>,
    }

    impl Write for Held {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dropping_an_unfinished_offload_ends_its_thread_and_its_writer() {
        let alive = Arc::new(());
        let mut offload = Offload::start(
            Held {
                _alive: Arc::clone(&alive),
            },
            "test",
        )
        .unwrap();
        offload.write_all(&counting(3 * CHUNK)).unwrap();
        drop(offload);
        // Dropping joined the stage, which dropped the writer without finishing it.
        assert_eq!(Arc::strong_count(&alive), 1);
    }

    #[test]
    fn every_sink_gives_the_same_blob_and_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::BlobStore::open(dir.path()).unwrap();
        let data = counting(3 * CHUNK + 5);
        for compression in [
            Compression::Gzip { level: 1 },
            Compression::Zstd { level: 1 },
        ] {
            let results: Vec<(Digest, u64, Digest)> = [1, 2, 3]
                .into_iter()
                .map(|threads| {
                    let mut sink =
                        LayerSink::new(store.writer().unwrap(), compression, threads).unwrap();
                    sink.write_all(&data[..CHUNK / 2]).unwrap();
                    let space = sink.space(CHUNK);
                    let len = space.len();
                    let landed = &data[CHUNK / 2..CHUNK / 2 + len];
                    space.copy_from_slice(landed);
                    let mut content = Lane::default();
                    let mut seen = Vec::new();
                    sink.commit(len, &mut content, |bytes| seen.extend_from_slice(bytes))
                        .unwrap();
                    assert!(seen == landed);
                    assert_eq!(
                        Digest::from_sha256_bytes(&content.finalize()),
                        Digest::sha256_of(landed)
                    );
                    sink.write_all(&data[CHUNK / 2 + len..]).unwrap();
                    let (blob, diff_id) = sink.finish().unwrap();
                    let (digest, size) = blob.commit().unwrap();
                    (digest, size, diff_id)
                })
                .collect();
            assert_eq!(results[0].2, Digest::sha256_of(&data));
            assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
        }
    }
}
