//! Now, as the tables, the key cache and Lambda's deadline state times:
//! Unix seconds or milliseconds. A clock before 1970 reads as 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now in Unix seconds (`expiresAt`, `lastUsed`, `createdAt`).
pub fn unix_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Now in Unix milliseconds (`rateLimitedUntil`, the key cache's
/// `fetchedAt`, Lambda's deadline).
pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `duration` in whole milliseconds, saturating.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
