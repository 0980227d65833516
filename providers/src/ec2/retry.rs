//! Backoff retries of single EC2 API calls (throttling, 5xx, connection
//! errors). The SDK's own retries are off so there is one policy, here.

use std::future::Future;

use backon::{ExponentialBuilder, Retryable};

use super::errors::is_retryable;
use super::settings::RetrySettings;
use crate::ProviderError;

/// Runs `call` until it succeeds, fails for good, or retries run out.
pub async fn with_retries<T, F, Fut>(
    retry: &RetrySettings,
    what: &str,
    call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let policy = ExponentialBuilder::default()
        .with_min_delay(retry.min_delay)
        .with_max_delay(retry.max_delay)
        .with_max_times(retry.max_retries)
        .with_jitter();
    call.retry(policy)
        .when(is_retryable)
        .notify(|e: &ProviderError, delay| {
            tracing::debug!(%what, error = %e, ?delay, "EC2 call failed; retrying")
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn fast() -> RetrySettings {
        RetrySettings {
            max_retries: 5,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_until_it_passes() {
        let calls = AtomicUsize::new(0);
        let out = with_retries(&fast(), "test", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(ProviderError::transient("slow down").with_code("RequestLimitExceeded"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn permanent_and_capacity_errors_are_not_retried() {
        for err in [
            ProviderError::permanent("bad ami").with_code("InvalidAMIID.NotFound"),
            ProviderError::transient("full").with_code("InsufficientInstanceCapacity"),
        ] {
            let calls = AtomicUsize::new(0);
            let out: Result<(), _> = with_retries(&fast(), "test", || {
                calls.fetch_add(1, Ordering::SeqCst);
                let err = err.clone();
                async move { Err(err) }
            })
            .await;
            assert!(out.is_err());
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{err}");
        }
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let calls = AtomicUsize::new(0);
        let out: Result<(), _> = with_retries(&fast(), "test", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(ProviderError::transient("down").with_code("InternalError")) }
        })
        .await;
        assert_eq!(
            out.err().and_then(|e| e.code).as_deref(),
            Some("InternalError")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }
}
