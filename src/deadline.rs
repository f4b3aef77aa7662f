//! How long a request may still work: Lambda's deadline, less the time
//! needed to answer. Every DynamoDB call is bounded by it, so the deadline
//! ends a call through the SDK's own timeout (and the function still
//! writes its audit line) instead of cancelling the call from outside.

use std::time::{Duration, Instant};

use crate::clock::unix_millis;

/// Left for answering after the last call: the response, the log and
/// audit lines, at a small Lambda's CPU share.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// Lambda deadlines are Unix milliseconds; anything before this (2001) is
/// not a time. `cargo lambda watch` sends its timeout (600000) instead.
const FIRST_PLAUSIBLE_MS: u64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Work must end by then (the margin is already taken off).
    At(Instant),
    /// The event source gave no usable deadline: the SDK's own timeouts
    /// bound each call.
    Unknown,
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

    /// Time left for work; `None` when unknown.
    pub fn left(&self) -> Option<Duration> {
        match self {
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
            Deadline::Unknown => None,
        }
    }

    /// `limit`, or the time left when that is shorter.
    pub fn bound(&self, limit: Duration) -> Duration {
        self.left().map_or(limit, |left| left.min(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_millis as now_ms;

    #[test]
    fn lambda_deadlines_leave_the_answer_margin() {
        let left = Deadline::from_lambda_ms(now_ms() + 6_000).left().unwrap();
        assert!(left <= Duration::from_millis(5_500) && left > Duration::from_millis(5_000), "{left:?}");
        assert_eq!(Deadline::from_lambda_ms(now_ms() + 100).left(), Some(Duration::ZERO));
    }

    #[test]
    fn a_past_deadline_leaves_nothing_and_a_duration_is_no_deadline() {
        assert_eq!(Deadline::from_lambda_ms(now_ms() - 1_000).left(), Some(Duration::ZERO));
        assert_eq!(Deadline::from_lambda_ms(600_000), Deadline::Unknown);
        assert_eq!(Deadline::from_lambda_ms(0), Deadline::Unknown);
        assert_eq!(Deadline::from_lambda_ms(u64::MAX).left().map(|l| l > Duration::from_secs(1)), Some(true));
    }

    #[test]
    fn bound_takes_the_shorter() {
        assert_eq!(Deadline::Unknown.bound(Duration::from_secs(3)), Duration::from_secs(3));
        let soon = Deadline::after(Duration::from_millis(200)).bound(Duration::from_secs(3));
        assert!(soon <= Duration::from_millis(200), "{soon:?}");
    }
}
