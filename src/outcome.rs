//! Every way a request can end (spec §3, §4), as the app decides it;
//! `http::response` turns each into its response.

use crate::ids::{IdError, TokenId, UserId};
use crate::policy::Refusal;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Deleted,
    /// CORS preflight, answered as NetBird's server does: permissive, no auth.
    Preflight,
    MethodNotAllowed,
    RouteNotFound,
    /// An event that is not an HTTP request, or one past the size limits.
    BadRequest(&'static str),
    NoAuthentication,
    TokenInvalid,
    InvalidUserId,
    InvalidTokenId,
    Refused {
        refusal: Refusal,
        caller_id: UserId,
        target_id: UserId,
    },
    TokenNotFound(TokenId),
    /// A PAT over NetBird's rate limit (spec §9).
    TooManyRequests,
    /// Details are logged where they happen; the client learns nothing.
    Internal,
}

impl From<IdError> for Outcome {
    fn from(err: IdError) -> Self {
        match err {
            IdError::User => Outcome::InvalidUserId,
            IdError::Token => Outcome::InvalidTokenId,
        }
    }
}
