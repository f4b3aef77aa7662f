//! NetBird's `DELETE /api/users/{userId}/tokens/{tokenId}` as an AWS Lambda function.
//!
//! The request flows through these modules, in order:
//! [`route`] (which route, which ids) → [`credential`] / [`pat`] / [`jwt`]
//! (who is calling) → [`policy`] (may they) → [`store`] (the only place
//! that talks to DynamoDB) → [`error`] (every refusal as a response).
//! [`handler`] strings them together; [`entry`] adapts Lambda events to it.

pub mod config;
pub mod credential;
pub mod devkeys;
pub mod entry;
pub mod error;
pub mod handler;
pub mod ids;
pub mod jwks;
pub mod jwt;
pub mod pat;
pub mod policy;
pub mod route;
pub mod store;
pub mod telemetry;
pub mod user;
