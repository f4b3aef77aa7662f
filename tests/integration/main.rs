//! Everything that needs DynamoDB Local (`make test` starts it), in one
//! test binary: one link of the AWS SDK instead of one per file, and the
//! test kit in `tests/common` used whole, so a helper nobody calls is a
//! warning.

#[path = "../common/mod.rs"]
mod common;

mod delete_token;
mod e2e;
// The soak: named so that it starts among the first (libtest starts tests
// in name order), as it is the longest.
mod endurance;
mod events;
mod faults;
mod identity_providers;
mod jwt;
mod key_cache;
mod local_tools;
mod races;
mod rate_limit;
mod runtime;
