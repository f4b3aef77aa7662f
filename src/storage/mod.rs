//! DynamoDB: the SDK client, the rows as items, and the store, the only
//! code that makes calls.

pub mod client;
pub mod items;
pub mod store;
