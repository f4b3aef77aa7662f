//! NetBird's per-PAT rate limit (spec §9) as a generic cell rate
//! algorithm: a bucket of `burst` requests refilled at `per_minute` is one
//! number per token, the time at which its bucket is next full
//! (`rateLimitedUntil`, Unix ms). A request is allowed when the bucket
//! still holds a request: its full-time is at most `burst - 1` intervals
//! ahead of now. Paying moves that time one interval on, so it is never
//! more than `burst` intervals ahead.
//!
//! Pure: [`Bucket::payments`] says which writes to try, in order; the store
//! makes each [`Payment`] one conditional write, so the table decides when
//! instances race.

use crate::config::RateLimit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Time one request's token takes to refill, ms.
    pub interval_ms: u64,
    /// How far ahead of now the full-time may be and still admit a request.
    pub tolerance_ms: u64,
}

/// One payment from a token's bucket, made at `now_ms`: the condition on
/// the full-time the table holds, and the full-time it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    /// The bucket is full (no full-time, or one at or before `now_ms`): the
    /// full-time becomes `full_at_ms`, one interval after now.
    Idle { now_ms: u64, full_at_ms: u64 },
    /// The bucket is partly used (a full-time after `now_ms`, at most
    /// `limit_ms`): the full-time moves one interval on.
    Busy { now_ms: u64, interval_ms: u64, limit_ms: u64 },
}

impl Payment {
    /// Whether a bucket whose full-time is `full_at` takes this payment.
    pub fn admits(&self, full_at: Option<u64>) -> bool {
        match (*self, full_at) {
            (Payment::Idle { .. }, None) => true,
            (Payment::Idle { now_ms, .. }, Some(full_at)) => full_at <= now_ms,
            (Payment::Busy { .. }, None) => false,
            (Payment::Busy { now_ms, limit_ms, .. }, Some(full_at)) => full_at > now_ms && full_at <= limit_ms,
        }
    }

    /// The full-time after this payment, from `full_at` (which it admits).
    pub fn paid(&self, full_at: Option<u64>) -> u64 {
        match *self {
            Payment::Idle { full_at_ms, .. } => full_at_ms,
            Payment::Busy { interval_ms, .. } => full_at.unwrap_or_default().saturating_add(interval_ms),
        }
    }
}

impl Bucket {
    pub fn new(limit: RateLimit) -> Self {
        // At most 60 000 a minute refill a whole token per millisecond.
        let interval_ms = (60_000 / u64::from(limit.per_minute.get())).max(1);
        Bucket { interval_ms, tolerance_ms: interval_ms.saturating_mul(u64::from(limit.burst.get()) - 1) }
    }

    /// The writes to try, in order, for a request at `now_ms`, knowing a
    /// possibly stale copy `seen` of the full-time (the index's): the first
    /// the table takes pays for the request; when none does, the request is
    /// refused. The full-time only ever grows, so a stale copy is never
    /// ahead: a refusal from it alone is always right (no write is tried),
    /// and a guess it gets wrong costs one more write, the other case's.
    pub fn payments(&self, seen: Option<u64>, now_ms: u64) -> impl Iterator<Item = Payment> {
        let limit_ms = now_ms.saturating_add(self.tolerance_ms);
        let idle = Payment::Idle { now_ms, full_at_ms: now_ms.saturating_add(self.interval_ms) };
        let busy = Payment::Busy { now_ms, interval_ms: self.interval_ms, limit_ms };
        let (first, second) = match seen {
            Some(full_at) if full_at > limit_ms => (None, None),
            Some(full_at) if full_at > now_ms => (Some(busy), None),
            _ => (Some(idle), Some(busy)),
        };
        first.into_iter().chain(second)
    }

    /// Whether the copy `seen` already shows the bucket empty at `now_ms`.
    pub fn refuses(&self, seen: Option<u64>, now_ms: u64) -> bool {
        self.payments(seen, now_ms).next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_minute: u32, burst: u32) -> RateLimit {
        RateLimit { per_minute: per_minute.try_into().unwrap(), burst: burst.try_into().unwrap() }
    }

    /// The bucket's answers over `times`, the full-time kept as the table
    /// keeps it: the first payment it admits is paid.
    fn run(bucket: &Bucket, times: &[u64]) -> Vec<bool> {
        let mut full_at: Option<u64> = None;
        times
            .iter()
            .map(|&now| {
                let paid = bucket.payments(full_at, now).find(|p| p.admits(full_at));
                if let Some(payment) = paid {
                    full_at = Some(payment.paid(full_at));
                }
                paid.is_some()
            })
            .collect()
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_refills_at_the_rate() {
        // 60 a minute: one a second; a burst of 3.
        let bucket = Bucket::new(limit(60, 3));
        assert_eq!(bucket, Bucket { interval_ms: 1000, tolerance_ms: 2000 });
        let at_once = run(&bucket, &[0, 0, 0, 0, 0]);
        assert_eq!(at_once, [true, true, true, false, false]);
        // After 1 s one token is back, after 3 s the whole burst.
        assert_eq!(run(&bucket, &[0, 0, 0, 999, 1000, 1000]), [true, true, true, false, true, false]);
        assert_eq!(run(&bucket, &[0, 0, 0, 3000, 3000, 3000, 3000]), [true, true, true, true, true, true, false]);
    }

    #[test]
    fn netbirds_defaults_and_extremes() {
        let defaults = Bucket::new(limit(6, 500));
        assert_eq!(defaults, Bucket { interval_ms: 10_000, tolerance_ms: 4_990_000 });
        assert_eq!(run(&defaults, &[0; 501]).iter().filter(|a| **a).count(), 500);
        let burst_of_one = Bucket::new(limit(1, 1));
        assert_eq!(run(&burst_of_one, &[0, 59_999, 60_000]), [true, false, true]);
        let huge = Bucket::new(limit(u32::MAX, u32::MAX));
        assert_eq!(huge.interval_ms, 1);
        let busy: Vec<_> = huge.payments(Some(u64::MAX), u64::MAX - 1).collect();
        assert!(matches!(busy[..], [Payment::Busy { .. }]), "no overflow: {busy:?}");
        assert_eq!(busy[0].paid(Some(u64::MAX)), u64::MAX);
    }

    #[test]
    fn a_stale_copy_never_refuses_wrongly() {
        let bucket = Bucket::new(limit(60, 2));
        let kinds = |seen| {
            bucket
                .payments(seen, 5_000)
                .map(|p| match p {
                    Payment::Idle { .. } => "idle",
                    Payment::Busy { .. } => "busy",
                })
                .collect::<Vec<_>>()
        };
        // The copy says full: try the idle write, then the busy one, as the
        // table may say otherwise.
        assert_eq!(kinds(None), ["idle", "busy"]);
        assert_eq!(kinds(Some(5_000)), ["idle", "busy"]);
        assert_eq!(kinds(Some(6_000)), ["busy"]);
        assert_eq!(kinds(Some(6_001)), Vec::<&str>::new());
        assert!(bucket.refuses(Some(6_001), 5_000) && !bucket.refuses(Some(6_000), 5_000));
    }

    #[test]
    fn each_payment_admits_only_its_case() {
        let idle = Payment::Idle { now_ms: 100, full_at_ms: 1_100 };
        let busy = Payment::Busy { now_ms: 100, interval_ms: 1_000, limit_ms: 2_100 };
        for (full_at, idle_takes, busy_takes) in
            [(None, true, false), (Some(100), true, false), (Some(101), false, true), (Some(2_100), false, true)]
        {
            assert_eq!((idle.admits(full_at), busy.admits(full_at)), (idle_takes, busy_takes), "{full_at:?}");
        }
        assert!(!busy.admits(Some(2_101)), "over the limit");
        assert_eq!((idle.paid(Some(50)), busy.paid(Some(1_500))), (1_100, 2_500));
    }
}
