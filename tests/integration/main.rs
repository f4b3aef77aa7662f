//! Everything that needs DynamoDB Local (`make test` starts it), in one
//! test binary: one link of the AWS SDK instead of one per file, and the
//! test kit in `tests/common` used whole, so a helper nobody calls is a
//! warning.

#[path = "../common/mod.rs"]
mod common;

mod e2e;
mod events;
mod explain;
mod faults;
mod keys;
mod local_tools;
mod rate_limit;
mod runtime;
mod store;
