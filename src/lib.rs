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
//!   and the identity provider's keys ([`auth::keys`],
//!   [`auth::provider`]).
//! - [`domain`]: NetBird's users and tokens, and its rules: who may delete
//!   which token ([`domain::policy`]) and the per-PAT rate limit
//!   ([`domain::rate_limit`]), both pure; what they need from storage
//!   ([`domain::store`]).
//! - [`storage`]: the domain on DynamoDB ([`storage::dynamo`], the only code
//!   that calls it; [`storage::items`], the rows; [`storage::client`], the
//!   SDK client), and in memory for tests.
//!
//! Beside them: [`clock`] (now, as the tables state it), [`config`]
//! (settings, read once at init), [`deadline`] (the time a request has
//! left, which bounds every call it waits on), [`ids`] (typed ids) and
//! [`telemetry`] (logs, metrics, the audit line). The behaviour they
//! implement is specified in `docs/spec.md`.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod deadline;
#[cfg(any(test, feature = "devstack"))]
pub mod devkeys;
pub mod domain;
pub mod http;
pub mod ids;
pub mod outcome;
pub mod storage;
pub mod telemetry;
