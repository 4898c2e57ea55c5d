//! Retrying transient registry failures with exponential backoff and jitter, as
//! go-containerregistry's transport does: connection errors, 408, 429 and 5xx (and the
//! registry error codes that mean the same). A retried operation starts over cleanly
//! (an upload reopens its file and opens a new upload session).
//!
//! oci-client does not expose response headers on errors, so requests made through it
//! cannot honour `Retry-After`; the backoff (up to 8 s a wait, 6 attempts) covers
//! typical rate limits. Push requests, made by [`super::push_client`], do honour it.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};

/// Attempts per operation, the first included.
pub const ATTEMPTS: u32 = 6;
const FIRST_WAIT: Duration = Duration::from_millis(250);
const LONGEST_WAIT: Duration = Duration::from_secs(8);

/// Whether an error is worth another attempt.
pub fn is_transient(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::RequestError(e) => {
            e.status().map_or(!e.is_builder(), |s| is_transient_status(s.as_u16()))
        }
        OciDistributionError::ServerError { code, .. } => is_transient_status(*code),
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(&e.code, OciErrorCode::Toomanyrequests)
                || matches!(&e.code, OciErrorCode::Other(code) if matches!(code.as_str(), "UNAVAILABLE" | "UNKNOWN"))
        }),
        _ => false,
    }
}

fn is_transient_status(status: u16) -> bool {
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

/// Runs `operation` until it succeeds, fails with a non-transient error, or has used
/// [`ATTEMPTS`] attempts.
pub async fn retrying<T, F, Fut>(operation: F) -> Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    retrying_when(operation, is_transient).await
}

/// [`retrying`] with the caller's notion of a transient error (a download also retries
/// a connection that drops mid-stream, which surfaces as an I/O error).
pub async fn retrying_when<T, E, F, Fut>(
    mut operation: F,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Err(error) if attempt + 1 < ATTEMPTS && transient(&error) => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "http://127.0.0.1/v2/".into(),
            message: String::new(),
        }
    }

    #[test]
    fn transient_failures_are_told_from_final_ones() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(&server(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 405] {
            assert!(!is_transient(&server(code)), "{code}");
        }
        let envelope = |code: &str| OciDistributionError::RegistryError {
            envelope: serde_json::from_str(&format!(
                r#"{{"errors":[{{"code":"{code}","message":""}}]}}"#
            ))
            .unwrap(),
            url: String::new(),
        };
        assert!(is_transient(&envelope("TOOMANYREQUESTS")));
        assert!(is_transient(&envelope("UNKNOWN")));
        assert!(!is_transient(&envelope("MANIFEST_INVALID")));
        assert!(!is_transient(&envelope("DENIED")));
        assert!(!is_transient(&OciDistributionError::PushNoDataError));
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

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn retries_transient_errors_then_gives_up() {
        let mut calls = 0;
        let result: Result<(), _> = retrying(|| {
            calls += 1;
            async { Err(server(503)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, ATTEMPTS);

        let mut calls = 0;
        let result = retrying(|| {
            calls += 1;
            let outcome = if calls < 3 {
                Err(server(429))
            } else {
                Ok(calls)
            };
            async move { outcome }
        })
        .await;
        assert_eq!(result.unwrap(), 3);

        let mut calls = 0;
        let result: Result<(), _> = retrying(|| {
            calls += 1;
            async { Err(server(404)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1, "a final error is not retried");
    }
}
