//! DynamoDB: the SDK client, the domain as items, and the store, the only
//! code that makes calls; a store that never writes, for `make explain`;
//! and the same store in memory, for tests.

pub mod client;
pub mod dynamo;
pub mod items;
#[cfg(any(test, feature = "devstack"))]
pub mod memory;
pub mod read_only;
