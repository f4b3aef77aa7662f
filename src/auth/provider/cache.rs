//! The fleet's cache of the provider's key set (spec §5, §6): one entry
//! per key source, which every instance reads and the one that fetched
//! writes, so the fleet asks the provider about once per lifetime of the
//! set instead of once per cold start. The store implements it
//! (`storage::dynamo`, and in memory for tests).

use std::future::Future;
use std::time::Duration;

use crate::clock::millis;
use crate::deadline::Deadline;
use crate::domain::store::StoreError;

/// A shared entry fetched later than this ahead of the clock that judges
/// it is not believed (it would stay fresh too long).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The latest `fetchedAt` a shared entry may claim and still be believed,
/// judged at `judged_at_ms`: by this instance's clock when it reads the
/// cache, by a fresh fetch's time when it writes it.
pub fn believable_until(judged_at_ms: u64) -> u64 {
    judged_at_ms.saturating_add(millis(MAX_CLOCK_SKEW))
}

/// A key set as the shared cache holds it: the provider's document as it
/// was fetched, when, and for how long it is fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedKeySet {
    pub document: String,
    pub fetched_at_ms: u64,
    pub max_age_secs: u64,
}

impl CachedKeySet {
    /// Whether this set, just fetched, replaces `held` in the shared cache:
    /// `held` was fetched earlier, or claims a time too far ahead to be
    /// believed. A newer believable set is never replaced.
    pub fn replaces(&self, held: &CachedKeySet) -> bool {
        held.fetched_at_ms < self.fetched_at_ms || held.fetched_at_ms > believable_until(self.fetched_at_ms)
    }
}

/// The cache every instance shares, each call within `deadline`. Errors
/// are for logs only.
pub trait SharedKeyCache: Send + Sync + 'static {
    /// The entry of `source`, if any; one of the wrong shape is an error.
    fn load(
        &self,
        source: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<CachedKeySet>, StoreError>> + Send;

    /// Stores `entry` unless the cache holds one it does not
    /// [replace](CachedKeySet::replaces) (then `Ok(false)`): concurrent
    /// refreshes never replace a newer set, and an entry of the wrong shape
    /// or from the future never outlives the next fetch.
    fn store(
        &self,
        source: &str,
        entry: &CachedKeySet,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetched_set_replaces_an_older_or_unbelievable_one_never_a_newer() {
        let at = |fetched_at_ms| CachedKeySet { document: "{}".into(), fetched_at_ms, max_age_secs: 60 };
        let fetched = at(1_000_000);
        assert!(fetched.replaces(&at(999_999)));
        assert!(!fetched.replaces(&at(1_000_000)), "the same time: keep it");
        assert!(!fetched.replaces(&at(1_000_000 + millis(MAX_CLOCK_SKEW))), "newer and believable");
        assert!(fetched.replaces(&at(1_000_001 + millis(MAX_CLOCK_SKEW))), "from the future");
        assert!(fetched.replaces(&at(u64::MAX)));
    }
}
