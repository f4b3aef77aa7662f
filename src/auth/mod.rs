//! Who is calling: the `Authorization` header, NetBird PATs, JWTs, and the
//! identity provider's keys (parsed in `keys`, obtained and cached in
//! `provider_keys`).

mod fetch;
pub mod header;
pub mod jwt;
pub mod keys;
pub mod pat;
pub mod provider_keys;
