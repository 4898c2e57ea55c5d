//! The one retry policy of every registry request (see [`super::transport`]), as
//! go-containerregistry's transport has it: connection errors, 408, 429 and 5xx are
//! tried again, up to [`ATTEMPTS`] attempts. The wait before the next attempt is what
//! the registry's `Retry-After` asks (delta seconds or an HTTP date), capped at
//! [`LONGEST_RETRY_AFTER`]; without one, exponential backoff with jitter. A retried
//! operation starts over cleanly (an upload reopens its file and a new session).

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// Attempts per operation, the first included.
pub const ATTEMPTS: u32 = 6;
const FIRST_WAIT: Duration = Duration::from_millis(250);
const LONGEST_WAIT: Duration = Duration::from_secs(8);
/// The longest `Retry-After` honoured: a registry asking for more is asked again
/// sooner rather than left to stall the command for minutes.
pub const LONGEST_RETRY_AFTER: Duration = Duration::from_mins(1);

/// What the policy says of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Again {
    /// Final: give up.
    Never,
    /// Worth another attempt after the backoff.
    Backoff,
    /// Worth another attempt after this wait (`Retry-After`; capped).
    After(Duration),
}

/// Whether an HTTP status is worth another attempt.
pub fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// The wait before attempt `attempt + 1`: exponential, capped, with full jitter in
/// [half, whole] so many clients do not retry in step.
pub fn backoff(attempt: u32) -> Duration {
    let exponential = FIRST_WAIT.saturating_mul(1 << attempt.min(16));
    let ceiling = exponential.min(LONGEST_WAIT);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    ceiling.mul_f64(fraction)
}

/// What a `Retry-After` header asks for, from `now`: delta seconds (`120`) or an
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's preferred form; a date
/// already past means at once). `None` for anything else (the backoff then applies).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(http_date_seconds(value)?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Seconds since the epoch of an IMF-fixdate.
fn http_date_seconds(value: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let (_, rest) = value.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? as u64 + 1;
    let day: u64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: u64 = year.parse().ok().filter(|y| *y >= 1970)?;
    let clock: Vec<u64> = time
        .split(':')
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    let [hours, minutes, seconds] = clock.as_slice() else {
        return None;
    };
    if *hours > 23 || *minutes > 59 || *seconds > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hours * 3600 + minutes * 60 + seconds)
}

/// Days from 1970-01-01 to a (proleptic Gregorian) date on or after it (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Runs `operation` until it succeeds, fails for good, or has had [`ATTEMPTS`]
/// attempts. `again` says, of a failure, whether it is worth another attempt and how
/// long to wait first.
pub async fn retrying<T, E, F, Fut>(mut operation: F, again: impl Fn(&E) -> Again) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Err(error) if attempt + 1 < ATTEMPTS => {
                let pause = match again(&error) {
                    Again::Never => return Err(error),
                    Again::Backoff => backoff(attempt),
                    Again::After(asked) => asked.min(LONGEST_RETRY_AFTER),
                };
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses_are_told_from_final_ones() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(code), "{code}");
        }
        for code in [400, 401, 403, 404, 405, 413] {
            assert!(!is_transient_status(code), "{code}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for attempt in 0..20 {
            let wait = backoff(attempt);
            let ceiling = FIRST_WAIT
                .saturating_mul(1 << attempt.min(16))
                .min(LONGEST_WAIT);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        // 1994-11-06T08:49:37Z is 784111777 s after the epoch.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_mins(2)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means at once"
        );
        assert_eq!(http_date_seconds("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date_seconds("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        for bad in [
            "",
            "soon",
            "-1",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad}");
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn retries_what_the_policy_says_then_gives_up() {
        let transient = |e: &u16| {
            if is_transient_status(*e) {
                Again::Backoff
            } else {
                Again::Never
            }
        };
        let mut calls = 0;
        let result: Result<(), u16> = retrying(
            || {
                calls += 1;
                async { Err(503) }
            },
            transient,
        )
        .await;
        assert_eq!(result, Err(503));
        assert_eq!(calls, ATTEMPTS);

        let mut calls = 0;
        let result = retrying(
            || {
                calls += 1;
                let outcome = if calls < 3 { Err(429) } else { Ok(calls) };
                async move { outcome }
            },
            transient,
        )
        .await;
        assert_eq!(result, Ok(3));

        let mut calls = 0;
        let result: Result<(), u16> = retrying(
            || {
                calls += 1;
                async { Err(404) }
            },
            transient,
        )
        .await;
        assert_eq!(result, Err(404));
        assert_eq!(calls, 1, "a final error is not retried");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn an_asked_wait_is_honoured_and_capped() {
        let started = tokio::time::Instant::now();
        let mut calls = 0;
        let _: Result<(), u16> = retrying(
            || {
                calls += 1;
                let outcome = if calls < 2 { Err(429) } else { Ok(()) };
                async move { outcome }
            },
            |_| Again::After(Duration::from_secs(2)),
        )
        .await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        let started = tokio::time::Instant::now();
        let mut calls = 0;
        let _: Result<(), u16> = retrying(
            || {
                calls += 1;
                let outcome = if calls < 2 { Err(429) } else { Ok(()) };
                async move { outcome }
            },
            |_| Again::After(Duration::from_hours(1)),
        )
        .await;
        assert_eq!(started.elapsed(), LONGEST_RETRY_AFTER);
    }
}
