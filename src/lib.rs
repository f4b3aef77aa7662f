//! NetBird's `DELETE /api/users/{userId}/tokens/{tokenId}` as an AWS Lambda function.
//!
//! A request flows through these modules, in order:
//! [`entry`] (Lambda event → HTTP request) → [`handler`], which asks
//! [`route`] (which route, which ids), [`credential`] / [`pat`] / [`jwt`]
//! (who is calling), [`policy`] (may they) and [`store`] (the only place
//! that talks to DynamoDB, in [`items`]) → [`response`] (every outcome as
//! a response, with its log line).

pub mod config;
pub mod credential;
pub mod devkeys;
pub mod entry;
mod fetch;
pub mod handler;
pub mod ids;
pub mod items;
pub mod jwks;
pub mod jwt;
pub mod pat;
pub mod policy;
pub mod response;
pub mod route;
pub mod sdk;
pub mod store;
pub mod telemetry;
