//! NetBird's `DELETE /api/users/{userId}/tokens/{tokenId}` as an AWS Lambda
//! function. The modules, in the order a request meets them:
//!
//! - [`http`]: the edge. A Lambda event in ([`http::lambda`]), its route
//!   and ids ([`http::route`]), every outcome out as a response
//!   ([`http::response`]).
//! - [`app`]: a delete, start to end, in NetBird's order; [`outcome`]:
//!   every way a request can end.
//! - [`auth`]: who is calling. The `Authorization` header
//!   ([`auth::header`]), NetBird PATs ([`auth::pat`]), JWTs ([`auth::jwt`])
//!   and the identity provider's keys ([`auth::keys`]).
//! - [`policy`]: may they (pure); [`rate_limit`]: NetBird's per-PAT limit
//!   (pure).
//! - [`storage`]: the only code that talks to DynamoDB ([`storage::store`]),
//!   the rows as items ([`storage::items`]), the SDK client
//!   ([`storage::client`]).
//!
//! Beside them: [`clock`] (now, as the tables state it), [`config`]
//! (settings, read once at init), [`deadline`] (the
//! time a request has left), [`ids`] (typed
//! ids) and [`telemetry`] (logs, metrics, the audit line). The behaviour
//! they implement is specified in `docs/spec.md`.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod deadline;
#[cfg(feature = "devstack")]
pub mod devkeys;
pub mod http;
pub mod ids;
pub mod outcome;
pub mod policy;
pub mod rate_limit;
pub mod storage;
pub mod telemetry;
