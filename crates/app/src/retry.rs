//! The optimistic-concurrency loop the use cases share: read the state, decide, write it
//! conditionally (guarded by a revision, or by a unique index), and when another writer got
//! there first, read again and decide again. Nothing is locked between the read and the
//! write, so a lost race costs one more read; the cap only stops a record that never stops
//! changing from keeping a request forever.

use crate::{AppError, AppResult};
use lastmile_store::StoreError;
use std::future::Future;

/// Attempts before a record that keeps changing answers `409 concurrent-modification`.
///
/// A write is refused only because another one committed, so `n` requests racing for one
/// record need at most `n` attempts each; 32 covers any burst the API sees on one account or
/// service and still bounds the work of one request.
pub(crate) const MAX_ATTEMPTS: usize = 32;

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Attempt<T> {
    /// Written (or nothing to write): the result.
    Done(T),
    /// Lost the race: what the attempt read has changed; read again.
    Retry,
}

impl<T> Attempt<T> {
    /// A conditional write's result: `Stale` (the revision moved on) is a lost race, any
    /// other error is the answer.
    pub(crate) fn from_write(r: Result<T, StoreError>) -> AppResult<Self> {
        match r {
            Ok(v) => Ok(Self::Done(v)),
            Err(StoreError::Stale { .. }) => Ok(Self::Retry),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U> {
        match self {
            Self::Done(v) => Attempt::Done(f(v)),
            Self::Retry => Attempt::Retry,
        }
    }
}

/// Runs `attempt` until it is done, fails, or has lost the race [`MAX_ATTEMPTS`] times; then
/// `409 concurrent-modification` naming `what` ("the service", "the subscriber's account").
///
/// Attempts follow each other at once: every write that wins makes the next read see it, so
/// waiting would only add latency. An error from `attempt` is returned as it is, never retried.
pub(crate) async fn optimistic<T, F, Fut>(what: &'static str, mut attempt: F) -> AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AppResult<Attempt<T>>>,
{
    for _ in 0..MAX_ATTEMPTS {
        if let Attempt::Done(v) = attempt().await? {
            return Ok(v);
        }
    }
    Err(AppError::Conflict {
        kind: "concurrent-modification",
        message: format!("many requests are changing {what} at once; retry"),
        current_state: None,
        field: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn returns_the_value_of_the_first_success() {
        let calls = Cell::new(0);
        let r = optimistic("the thing", || async {
            calls.set(calls.get() + 1);
            Ok(Attempt::Done(7))
        })
        .await;
        assert_eq!(r.ok(), Some(7));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn retries_on_a_lost_race_until_done() {
        let calls = Cell::new(0);
        let r = optimistic("the thing", || async {
            calls.set(calls.get() + 1);
            Ok(if calls.get() < 3 {
                Attempt::Retry
            } else {
                Attempt::Done("third")
            })
        })
        .await;
        assert_eq!(r.ok(), Some("third"));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_cap_with_a_conflict() {
        let calls = Cell::new(0);
        let r: AppResult<()> = optimistic("the thing", || async {
            calls.set(calls.get() + 1);
            Ok(Attempt::Retry)
        })
        .await;
        assert_eq!(calls.get(), MAX_ATTEMPTS);
        match r {
            Err(AppError::Conflict {
                kind: "concurrent-modification",
                message,
                current_state: None,
                field: None,
            }) => assert_eq!(
                message,
                "many requests are changing the thing at once; retry"
            ),
            other => panic!("expected a concurrent-modification conflict, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn never_retries_an_error() {
        // A conflict of another kind, and a store error: both are answers, not lost races.
        for err in [
            AppError::invalid_state("terminated services stay so", "terminated"),
            AppError::Store(StoreError::Backend("down".into())),
        ] {
            let calls = Cell::new(0);
            let err = Cell::new(Some(err));
            let r: AppResult<()> = optimistic("the thing", || async {
                calls.set(calls.get() + 1);
                match err.take() {
                    Some(e) => Err(e),
                    None => Ok(Attempt::Done(())),
                }
            })
            .await;
            assert_eq!(calls.get(), 1);
            assert!(
                matches!(
                    r,
                    Err(AppError::Conflict {
                        kind: "invalid-state",
                        ..
                    }) | Err(AppError::Store(StoreError::Backend(_)))
                ),
                "{r:?}"
            );
        }
    }

    #[test]
    fn only_a_stale_write_is_a_lost_race() {
        assert!(matches!(Attempt::from_write(Ok(1)), Ok(Attempt::Done(1))));
        assert!(matches!(
            Attempt::<()>::from_write(Err(StoreError::Stale { entity: "service" })),
            Ok(Attempt::Retry)
        ));
        assert!(matches!(
            Attempt::<()>::from_write(Err(StoreError::Duplicate {
                entity: "subscriber",
                field: "number"
            })),
            Err(AppError::Conflict {
                kind: "duplicate",
                ..
            })
        ));
    }
}
