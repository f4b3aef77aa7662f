//! Who is calling: the `Authorization` header, NetBird PATs, JWTs and the
//! identity provider's keys.

mod fetch;
pub mod header;
pub mod jwt;
pub mod keys;
pub mod pat;
