//! How long a registry request may take. On top of the HTTP client's connect timeout
//! and silence timeout (`client.rs`: a connection that says nothing for
//! `client::read_timeout` fails), every request is under
//! two bounds, so a registry that trickles a byte now and then cannot hold a command
//! forever:
//!
//! * **a deadline** of [`document_deadline`] (twice the silence timeout, 60 s): a
//!   document (manifest, token, tag list, config, error body) is whole by then from
//!   the request's start, and every answer's head has come by then from the request's
//!   start, or, for a blob upload, from its last byte;
//! * **a minimum rate** for blob bodies, the only transfers with no size bound of
//!   their own (downloads, and uploads as they go out): over every window of the
//!   silence timeout (30 s) after the first, at least [`MIN_RATE`] on average. The
//!   first window is the grace for TCP slow start and a storage redirect's first
//!   byte. This bounds a blob of `n` bytes to at most `n / MIN_RATE` plus a window.
//!
//! A request given up under these bounds is not retried: a registry that answers, but
//! too slowly, would most likely be as slow again, and six attempts would make the
//! bound six times longer. (A silent connection stays a transient failure.)
//! `HOIST_REGISTRY_TIMEOUT` scales all three together.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::transport::{Failure, transport_failure};

/// The slowest average a blob transfer may keep over a window: 32 KiB/s. Far below
/// any registry link that works at all (a 1 Mbit/s line moves 122 KiB/s; the 1 GiB
/// blob at 10 MB/s of `benches/slow-blob.sh` moves 300 times this), and far above a
/// trickle (a byte every 10 s): a window of 30 s needs 960 KiB.
pub const MIN_RATE: u64 = 32 << 10;
/// The deadline in silence timeouts: 60 s by default. A document is at most 4 MiB
/// (`MANIFEST_LIMIT`) and mostly a few KiB, so 60 s is ample on any working link, while
/// a registry that trickles is given up well within the 150 s a CI job should wait.
const DEADLINE_WINDOWS: u32 = 2;
/// How often a transfer that receives nothing is judged again: a rate rule must fire
/// when bytes stop coming too, not only when the next one arrives.
const TICK: Duration = Duration::from_secs(1);
/// Samples closer together than this are merged, so a fast transfer keeps a few
/// hundred samples per window, not one per network read.
const SAMPLE_SPACING: Duration = Duration::from_millis(100);

/// The window of the minimum rate: the silence timeout.
pub fn window() -> Duration {
    super::client::read_timeout()
}

/// The deadline of a request's head, and of a document whole.
pub fn document_deadline() -> Duration {
    window() * DEADLINE_WINDOWS
}

/// The minimum-rate rule over timings measured from a transfer's start (pure, so it
/// is tested with simulated times).
#[derive(Debug)]
pub struct Pace {
    window: Duration,
    min_rate: u64,
    /// `(elapsed, bytes moved by then)`, oldest first; the first is at or before the
    /// start of the current window.
    samples: VecDeque<(Duration, u64)>,
}

impl Pace {
    /// The rule for windows of `window` at [`MIN_RATE`].
    pub fn new(window: Duration) -> Pace {
        Pace {
            window,
            min_rate: MIN_RATE,
            samples: VecDeque::from([(Duration::ZERO, 0)]),
        }
    }

    /// Records that `moved` bytes have moved in all by `elapsed`; an error when, over
    /// the window that ends now, fewer than `MIN_RATE × window` bytes moved. Nothing is
    /// judged before a whole window has passed.
    pub fn check(&mut self, elapsed: Duration, moved: u64) -> Result<(), String> {
        match self.samples.back_mut() {
            Some(last) if elapsed < last.0 + SAMPLE_SPACING => last.1 = moved,
            _ => self.samples.push_back((elapsed, moved)),
        }
        let Some(start) = elapsed.checked_sub(self.window) else {
            return Ok(());
        };
        while self.samples.len() > 1 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
        let before = self.samples.front().map_or(0, |sample| sample.1);
        let in_window = moved.saturating_sub(before);
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let needed = self.min_rate.saturating_mul(window_ms) / 1000;
        if in_window < needed {
            return Err(format!(
                "too slow: {in_window} bytes in the last {} s, under the {} KiB/s a transfer must keep",
                self.window.as_secs(),
                self.min_rate >> 10
            ));
        }
        Ok(())
    }
}

/// How much of a body we stream has gone out.
pub(super) type Meter = Arc<AtomicU64>;

/// A body we stream and meter: what the request's head wait judges the pace of.
pub(super) struct Sending {
    /// Bytes handed to the connection so far.
    pub(super) meter: Meter,
    /// The body's length.
    pub(super) length: u64,
}

/// Sends `request` and waits for the answer's head: a body we stream (`sending`) must
/// keep the pace while it goes out, and the head must come within the deadline of the
/// request's start, or of the streamed body's last byte.
pub(super) async fn head(
    http: &reqwest::Client,
    request: reqwest::Request,
    sending: Option<&Sending>,
) -> Result<reqwest::Response, Failure> {
    let started = Instant::now();
    let deadline = document_deadline();
    let mut pace = Pace::new(window());
    let mut sent_at = sending.is_none().then_some(started);
    let exchange = http.execute(request);
    tokio::pin!(exchange);
    loop {
        if let Ok(answer) = tokio::time::timeout(TICK, &mut exchange).await {
            return answer.map_err(|e| transport_failure(&e));
        }
        let now = Instant::now();
        match (sending, sent_at) {
            (_, Some(at)) if now.duration_since(at) > deadline => {
                return Err(Failure::Refused(format!(
                    "no answer within {} s",
                    deadline.as_secs()
                )));
            }
            (Some(body), None) => {
                let moved = body.meter.load(Ordering::Relaxed);
                if moved >= body.length {
                    sent_at = Some(now);
                } else {
                    pace.check(now.duration_since(started), moved)
                        .map_err(Failure::Refused)?;
                }
            }
            _ => {}
        }
    }
}

/// The body of an answer to a request sent at `started`, whole by the deadline:
/// `Ok(None)` when it is longer than `limit` bytes or breaks off.
pub(super) async fn document(
    mut response: reqwest::Response,
    started: Instant,
    limit: usize,
) -> Result<Option<Vec<u8>>, Failure> {
    let deadline = document_deadline();
    let mut body = Vec::new();
    loop {
        let chunk = match tokio::time::timeout_at(started + deadline, response.chunk()).await {
            Err(_) => {
                return Err(Failure::Refused(format!(
                    "the answer was not whole within {} s",
                    deadline.as_secs()
                )));
            }
            Ok(Err(_)) => return Ok(None),
            Ok(Ok(None)) => return Ok(Some(body)),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
}

/// A blob's body, read chunk by chunk at the minimum rate.
pub(super) struct Transfer {
    response: reqwest::Response,
    started: Instant,
    moved: u64,
    pace: Pace,
}

impl Transfer {
    /// The body of `response`, its pace judged from now.
    pub(super) fn new(response: reqwest::Response) -> Transfer {
        Transfer {
            response,
            started: Instant::now(),
            moved: 0,
            pace: Pace::new(window()),
        }
    }

    /// The next chunk; `None` at the end.
    pub(super) async fn next(&mut self) -> Result<Option<bytes::Bytes>, Failure> {
        loop {
            let waited = tokio::time::timeout(TICK, self.response.chunk()).await;
            if let Ok(chunk) = &waited {
                let length = chunk
                    .as_ref()
                    .map_or(0, |c| c.as_ref().map_or(0, bytes::Bytes::len));
                self.moved += length as u64;
            }
            self.pace
                .check(self.started.elapsed(), self.moved)
                .map_err(Failure::Refused)?;
            if let Ok(chunk) = waited {
                return chunk.map_err(|e| transport_failure(&e));
            }
        }
    }
}

/// `bytes` as a request body in pieces of 64 KiB counted into `meter` as they go out
/// (an in-memory chunk of an upload is paced like a streamed file).
pub(super) fn metered_bytes(bytes: bytes::Bytes, meter: &Meter) -> reqwest::Body {
    const PIECE: usize = 64 << 10;
    let meter = Arc::clone(meter);
    let pieces = (0..bytes.len()).step_by(PIECE).map(move |at| {
        let piece = bytes.slice(at..bytes.len().min(at + PIECE));
        meter.fetch_add(piece.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(piece)
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = crate::registry::client::READ_TIMEOUT;

    /// Feeds `pace` a transfer of `total` bytes at `rate` bytes/s in reads every
    /// `every`; the time it was given up at, if it was.
    fn simulate(pace: &mut Pace, total: u64, rate: u64, every: Duration) -> Option<Duration> {
        let mut elapsed = Duration::ZERO;
        let mut moved = 0;
        while moved < total {
            elapsed += every;
            moved = (rate as f64 * elapsed.as_secs_f64()) as u64;
            if pace.check(elapsed, moved.min(total)).is_err() {
                return Some(elapsed);
            }
        }
        None
    }

    #[test]
    fn the_default_bounds_are_the_documented_ones() {
        assert_eq!(WINDOW, Duration::from_secs(30));
        assert_eq!(WINDOW * DEADLINE_WINDOWS, Duration::from_mins(1));
        assert_eq!(MIN_RATE, 32 * 1024);
    }

    #[test]
    fn a_gib_at_10_mb_per_second_is_never_too_slow() {
        // 107 s of reads every 2 ms (20 KB each), as hyper delivers them.
        let mut pace = Pace::new(WINDOW);
        assert_eq!(
            simulate(&mut pace, 1 << 30, 10_000_000, Duration::from_millis(2)),
            None
        );
        assert!(pace.samples.len() < 400, "{} samples", pace.samples.len());
        // Slower still, 100 KiB/s (a 1 Mbit/s line): 3 hours, never given up.
        let mut pace = Pace::new(WINDOW);
        assert_eq!(
            simulate(&mut pace, 1 << 30, 100 << 10, Duration::from_millis(500)),
            None
        );
    }

    #[test]
    fn a_byte_every_10_s_is_given_up_after_one_window() {
        // The transfer's reader judges it every tick (1 s) while nothing comes.
        let mut pace = Pace::new(WINDOW);
        let mut given_up = None;
        for second in 1..=150u64 {
            let elapsed = Duration::from_secs(second);
            if pace.check(elapsed, second / 10).is_err() {
                given_up = Some(elapsed);
                break;
            }
        }
        assert_eq!(given_up, Some(WINDOW));
    }

    #[test]
    fn a_fast_start_does_not_excuse_a_stall_later() {
        // 10 MB/s for 60 s, then nothing: given up one window into the stall.
        let mut pace = Pace::new(WINDOW);
        let mut moved = 0;
        let mut given_up = None;
        for second in 1..=200u64 {
            if second <= 60 {
                moved += 10_000_000;
            }
            if pace.check(Duration::from_secs(second), moved).is_err() {
                given_up = Some(second);
                break;
            }
        }
        assert_eq!(given_up, Some(90));
    }

    #[test]
    fn a_rate_just_under_the_minimum_is_given_up_just_over_it_is_not() {
        let mut pace = Pace::new(WINDOW);
        assert_eq!(
            simulate(
                &mut pace,
                100 << 20,
                MIN_RATE - 1024,
                Duration::from_secs(1)
            ),
            Some(WINDOW)
        );
        let mut pace = Pace::new(WINDOW);
        assert_eq!(
            simulate(&mut pace, 10 << 20, MIN_RATE + 1024, Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn the_message_says_how_slow_and_what_is_needed() {
        let mut pace = Pace::new(Duration::from_secs(30));
        let error = pace.check(Duration::from_secs(31), 3).unwrap_err();
        assert_eq!(
            error,
            "too slow: 3 bytes in the last 30 s, under the 32 KiB/s a transfer must keep"
        );
    }
}
