//! How long a request may still work: Lambda's deadline, less the time
//! needed to answer. Every outbound call a request waits on (the tables,
//! the shared key cache, the identity provider) takes its timeout from
//! [`Deadline::budget`], so the deadline ends a call through the client's
//! own timeout, and the function still answers and writes its audit line,
//! instead of the call being cancelled from outside.

use std::future::Future;
use std::time::Duration;

// Tokio's clock: tests can stop it and move it, and nothing waits in real time.
use tokio::time::Instant;

use crate::clock::unix_millis;

/// Left for answering after the last call: the response, the log and
/// audit lines, at a small Lambda's CPU share.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// Less time than this left: a call is not started, as it could not
/// finish.
pub const MIN_CALL_TIME: Duration = Duration::from_millis(100);

/// Lambda deadlines are Unix milliseconds; anything before this (2001) is
/// not a time. `cargo lambda watch` sends its timeout (600000) instead.
const FIRST_PLAUSIBLE_MS: u64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Work must end by then (the margin is already taken off).
    At(Instant),
    /// No request waits (init, and the key fetch it starts), or the event source
    /// gave no usable deadline: each client's own timeouts bound its calls.
    Unknown,
}

/// A call not started: too little time was left to make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not sent: {} ms left before the request's deadline", .left.as_millis())]
pub struct TooLate {
    pub left: Duration,
}

impl Deadline {
    /// From Lambda's `Lambda-Runtime-Deadline-Ms`. A deadline already
    /// past leaves no time at all.
    pub fn from_lambda_ms(deadline_ms: u64) -> Self {
        if deadline_ms < FIRST_PLAUSIBLE_MS {
            return Deadline::Unknown;
        }
        let left = Duration::from_millis(deadline_ms.saturating_sub(unix_millis()));
        Self::after(left.saturating_sub(ANSWER_MARGIN))
    }

    /// Work must end `left` from now.
    pub fn after(left: Duration) -> Self {
        Instant::now().checked_add(left).map_or(Deadline::Unknown, Deadline::At)
    }

    /// This deadline, or `limit` from now when that is sooner: a slice of
    /// the time left.
    pub fn sooner(&self, limit: Duration) -> Self {
        let slice = Self::after(limit);
        match (self, slice) {
            (Deadline::At(at), Deadline::At(cut)) => Deadline::At((*at).min(cut)),
            (Deadline::At(at), Deadline::Unknown) => Deadline::At(*at),
            (Deadline::Unknown, slice) => slice,
        }
    }

    /// Time left for work; `None` when unknown.
    pub fn left(&self) -> Option<Duration> {
        match self {
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
            Deadline::Unknown => None,
        }
    }

    /// The timeout of one outbound call whose own limit is `limit`: that,
    /// or the time left when shorter. The one rule for every call: none
    /// starts with under [`MIN_CALL_TIME`] left.
    pub fn budget(&self, limit: Duration) -> Result<Duration, TooLate> {
        let budget = self.left().map_or(limit, |left| left.min(limit));
        if budget < MIN_CALL_TIME {
            return Err(TooLate { left: budget });
        }
        Ok(budget)
    }

    /// Waits for `ready` (which sends nothing, so dropping it loses
    /// nothing) no longer than the time left; `None` when the deadline
    /// comes first.
    pub async fn wait<F: Future>(&self, ready: F) -> Option<F::Output> {
        match self.left() {
            Some(left) => tokio::time::timeout(left, ready).await.ok(),
            None => Some(ready.await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_millis as now_ms;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn lambda_deadlines_leave_the_answer_margin_and_a_past_one_leaves_nothing() {
        let left = Deadline::from_lambda_ms(now_ms() + 6_000).left().unwrap();
        assert!(left <= 5_500 * MS && left > 5_000 * MS, "{left:?}");
        assert_eq!(Deadline::from_lambda_ms(now_ms() + 100).left(), Some(Duration::ZERO));
        assert_eq!(Deadline::from_lambda_ms(now_ms() - 1_000).left(), Some(Duration::ZERO));
        assert_eq!(Deadline::from_lambda_ms(600_000), Deadline::Unknown, "cargo lambda watch sends a duration");
        assert_eq!(Deadline::from_lambda_ms(0), Deadline::Unknown);
        assert!(Deadline::from_lambda_ms(u64::MAX).left().is_some_and(|l| l > Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_gets_the_shorter_of_its_limit_and_the_time_left_or_is_not_sent() {
        let limit = Duration::from_secs(3);
        assert_eq!(Deadline::Unknown.budget(limit), Ok(limit));
        let deadline = Deadline::after(200 * MS);
        assert_eq!(deadline.budget(limit), Ok(200 * MS));
        tokio::time::advance(150 * MS).await;
        assert_eq!(deadline.budget(limit), Err(TooLate { left: 50 * MS }));
        assert!(Deadline::Unknown.budget(10 * MS).is_err(), "a limit below the minimum");
        assert_eq!(TooLate { left: 42 * MS }.to_string(), "not sent: 42 ms left before the request's deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slice_is_the_sooner_of_the_two() {
        assert_eq!(Deadline::after(5_000 * MS).sooner(1_000 * MS).left(), Some(1_000 * MS));
        assert_eq!(Deadline::after(300 * MS).sooner(1_000 * MS).left(), Some(300 * MS));
        assert_eq!(Deadline::Unknown.sooner(1_000 * MS).left(), Some(1_000 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_the_deadline() {
        let started = Instant::now();
        assert_eq!(Deadline::after(20 * MS).wait(std::future::pending::<()>()).await, None);
        assert_eq!(started.elapsed(), 20 * MS);
        assert_eq!(Deadline::after(5_000 * MS).wait(async { 7 }).await, Some(7));
        assert_eq!(Deadline::Unknown.wait(async { 8 }).await, Some(8));
    }
}
