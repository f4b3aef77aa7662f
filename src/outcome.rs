//! Every way a request can end (spec §3, §4), as the app decides it;
//! `http::response` turns each into its response.

use crate::domain::policy::Refusal;
use crate::ids::{IdError, TokenId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
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
    Internal(Cause),
}

/// Why a request ended in a 500: the `cause` of its log line, so that
/// 500s can be counted by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A table call failed, was not sent in time, or read a malformed row.
    Storage,
    /// No usable signing key for a JWT.
    Keys,
    /// A delete was sent and no whole answer says what became of it.
    UnconfirmedDelete,
    /// No answer came before Lambda's deadline: a bug, as every call is
    /// bounded by the request's deadline.
    Deadline,
    /// The function's own code panicked: a bug.
    Panic,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Storage => "storage",
            Cause::Keys => "keys",
            Cause::UnconfirmedDelete => "unconfirmed_delete",
            Cause::Deadline => "deadline",
            Cause::Panic => "panic",
        }
    }
}

impl Outcome {
    /// One outcome of each kind, its ids as placeholders (`<id>`,
    /// `<userId>`, `<tokenId>`): the rows the documents' status table must
    /// have.
    pub fn every() -> Vec<Outcome> {
        let refused = |refusal| Outcome::Refused { refusal, caller_id: "<id>".into(), target_id: "<userId>".into() };
        let every = vec![
            Outcome::Deleted,
            Outcome::Preflight,
            Outcome::MethodNotAllowed,
            Outcome::RouteNotFound,
            Outcome::BadRequest(INVALID_REQUEST),
            Outcome::BadRequest(BODY_TOO_LARGE),
            Outcome::NoAuthentication,
            Outcome::TokenInvalid,
            Outcome::InvalidUserId,
            Outcome::InvalidTokenId,
            refused(Refusal::CallerNotFound),
            refused(Refusal::CallerBlocked),
            refused(Refusal::CallerPendingApproval),
            refused(Refusal::PermissionDenied),
            refused(Refusal::TargetNotFound),
            refused(Refusal::AdminRequired),
            Outcome::TokenNotFound("<tokenId>".into()),
            Outcome::TooManyRequests,
            Outcome::Internal(Cause::Storage),
        ];
        // Exhaustive on purpose: a new kind of outcome stops this compiling
        // until it is listed above (and so in the documents).
        for outcome in &every {
            match outcome {
                Outcome::Deleted
                | Outcome::Preflight
                | Outcome::MethodNotAllowed
                | Outcome::RouteNotFound
                | Outcome::BadRequest(_)
                | Outcome::NoAuthentication
                | Outcome::TokenInvalid
                | Outcome::InvalidUserId
                | Outcome::InvalidTokenId
                | Outcome::Refused { .. }
                | Outcome::TokenNotFound(_)
                | Outcome::TooManyRequests
                | Outcome::Internal(_) => {}
            }
        }
        every
    }
}

/// The messages of [`Outcome::BadRequest`].
pub const INVALID_REQUEST: &str = "invalid request";
pub const BODY_TOO_LARGE: &str = "request body too large";

impl From<IdError> for Outcome {
    fn from(err: IdError) -> Self {
        match err {
            IdError::User => Outcome::InvalidUserId,
            IdError::Token => Outcome::InvalidTokenId,
        }
    }
}
