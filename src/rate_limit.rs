//! NetBird's per-PAT rate limit (spec §9) as a generic cell rate
//! algorithm: a bucket of `burst` requests refilled at `per_minute` is one
//! number per token, the time at which its bucket is next full
//! (`rateLimitedUntil`, Unix ms). A request is allowed when the bucket
//! still holds a request: its full-time is at most `burst - 1` intervals
//! ahead of now. Paying moves that time one interval on, so it is never
//! more than `burst` intervals ahead. Pure: the store
//! turns each [`Step`] into one conditional write, so DynamoDB decides
//! when instances race.

use crate::config::RateLimit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Time one request's token takes to refill, ms.
    pub interval_ms: u64,
    /// How far ahead of now the full-time may be and still admit a request.
    pub tolerance_ms: u64,
}

/// What to try, knowing a (possibly stale) copy of the full-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Over the limit: refuse, write nothing.
    Refuse,
    /// The bucket is full: the full-time becomes now + one interval, if it
    /// is still at or before now.
    Idle,
    /// The bucket is partly used: the full-time moves one interval on, if
    /// it is still after now and within the tolerance.
    Busy,
}

impl Bucket {
    pub fn new(limit: RateLimit) -> Self {
        // At most 60 000 a minute refill a whole token per millisecond.
        let interval_ms = (60_000 / u64::from(limit.per_minute)).max(1);
        Bucket { interval_ms, tolerance_ms: interval_ms.saturating_mul(u64::from(limit.burst) - 1) }
    }

    /// The full-time up to which a request is still admitted.
    pub fn limit(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.tolerance_ms)
    }

    /// The first step for a row whose copy of the full-time is `seen`. The
    /// full-time only ever grows, so a stale copy is never ahead: a refusal
    /// from it is always right, an admission is checked by the write.
    pub fn first_step(&self, seen: Option<u64>, now_ms: u64) -> Step {
        match seen {
            Some(full_at) if full_at > self.limit(now_ms) => Step::Refuse,
            Some(full_at) if full_at > now_ms => Step::Busy,
            _ => Step::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket's answers over `times`, the full-time kept as the
    /// store's conditional writes keep it.
    fn run(bucket: &Bucket, times: &[u64]) -> Vec<bool> {
        let mut full_at: Option<u64> = None;
        times
            .iter()
            .map(|&now| match bucket.first_step(full_at, now) {
                Step::Refuse => false,
                Step::Idle => {
                    full_at = Some(now + bucket.interval_ms);
                    true
                }
                Step::Busy => {
                    full_at = full_at.map(|t| t + bucket.interval_ms);
                    true
                }
            })
            .collect()
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_refills_at_the_rate() {
        // 60 a minute: one a second; a burst of 3.
        let bucket = Bucket::new(RateLimit { per_minute: 60, burst: 3 });
        assert_eq!(bucket, Bucket { interval_ms: 1000, tolerance_ms: 2000 });
        let at_once = run(&bucket, &[0, 0, 0, 0, 0]);
        assert_eq!(at_once, [true, true, true, false, false]);
        // After 1 s one token is back, after 3 s the whole burst.
        assert_eq!(run(&bucket, &[0, 0, 0, 999, 1000, 1000]), [true, true, true, false, true, false]);
        assert_eq!(run(&bucket, &[0, 0, 0, 3000, 3000, 3000, 3000]), [true, true, true, true, true, true, false]);
    }

    #[test]
    fn netbirds_defaults_and_extremes() {
        let defaults = Bucket::new(RateLimit { per_minute: 6, burst: 500 });
        assert_eq!(defaults, Bucket { interval_ms: 10_000, tolerance_ms: 4_990_000 });
        assert_eq!(run(&defaults, &[0; 501]).iter().filter(|a| **a).count(), 500);
        let burst_of_one = Bucket::new(RateLimit { per_minute: 1, burst: 1 });
        assert_eq!(run(&burst_of_one, &[0, 59_999, 60_000]), [true, false, true]);
        let huge = Bucket::new(RateLimit { per_minute: u32::MAX, burst: u32::MAX });
        assert_eq!(huge.interval_ms, 1);
        assert_eq!(huge.first_step(Some(u64::MAX), u64::MAX - 1), Step::Busy, "no overflow");
    }

    #[test]
    fn a_stale_copy_never_refuses_wrongly() {
        let bucket = Bucket::new(RateLimit { per_minute: 60, burst: 2 });
        // The copy says full: try the idle write; the table may say otherwise.
        assert_eq!(bucket.first_step(None, 5_000), Step::Idle);
        assert_eq!(bucket.first_step(Some(5_000), 5_000), Step::Idle);
        assert_eq!(bucket.first_step(Some(6_000), 5_000), Step::Busy);
        assert_eq!(bucket.first_step(Some(6_001), 5_000), Step::Refuse);
    }
}
