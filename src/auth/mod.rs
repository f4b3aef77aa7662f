//! Who is calling: the `Authorization` header, NetBird PATs, JWTs, the
//! identity provider's keys (parsed in `keys`, obtained and held in
//! `provider`), and why a credential is refused (`reason`).

pub mod header;
pub mod jwt;
pub mod keys;
pub mod pat;
pub mod provider;
pub mod reason;
