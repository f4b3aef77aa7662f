//! Every way a request can end (spec §3, §4): the status table (status,
//! the `outcome` name of the log line, the message), and what each part of
//! the function's result becomes. `http::response` renders it.

use std::borrow::Cow;

use lambda_http::http::StatusCode;

use crate::auth::reason::Refused;
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
    /// No usable credential; the reason is for the log only.
    Unauthenticated(Refused),
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
    pub const ALL: [Cause; 5] = [Cause::Storage, Cause::Keys, Cause::UnconfirmedDelete, Cause::Deadline, Cause::Panic];

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

/// The messages of [`Outcome::BadRequest`].
pub const INVALID_REQUEST: &str = "invalid request";
pub const BODY_TOO_LARGE: &str = "request body too large";

impl Outcome {
    /// The status table's row: status, the outcome's stable name (the
    /// `outcome` field of the request's log line), and the body's message.
    pub fn row(&self) -> (StatusCode, &'static str, Cow<'static, str>) {
        use Refusal::*;
        use StatusCode as S;
        let fixed = |status, name, message: &'static str| (status, name, Cow::Borrowed(message));
        match self {
            Outcome::Deleted => fixed(S::OK, "deleted", ""),
            Outcome::Preflight => fixed(S::NO_CONTENT, "preflight", ""),
            Outcome::MethodNotAllowed => fixed(S::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed"),
            Outcome::RouteNotFound => fixed(S::NOT_FOUND, "route_not_found", "not found"),
            Outcome::BadRequest(why) => fixed(S::BAD_REQUEST, "bad_request", why),
            Outcome::Unauthenticated(refused) if refused.reason.is_missing_credential() => {
                fixed(S::UNAUTHORIZED, "no_authentication", "no valid authentication provided")
            }
            Outcome::Unauthenticated(_) => fixed(S::UNAUTHORIZED, "token_invalid", "token invalid"),
            Outcome::InvalidUserId => fixed(S::BAD_REQUEST, "invalid_user_id", "invalid user ID"),
            Outcome::InvalidTokenId => fixed(S::BAD_REQUEST, "invalid_token_id", "invalid token ID"),
            Outcome::Refused { refusal, caller_id, target_id } => match refusal {
                CallerNotFound => (
                    S::FORBIDDEN,
                    "caller_not_found",
                    format!("failed to validate user permissions: user: {caller_id} not found").into(),
                ),
                CallerBlocked => {
                    fixed(S::FORBIDDEN, "caller_blocked", "failed to validate user permissions: user is blocked")
                }
                CallerPendingApproval => fixed(
                    S::FORBIDDEN,
                    "caller_pending_approval",
                    "failed to validate user permissions: user is pending approval",
                ),
                PermissionDenied => fixed(S::FORBIDDEN, "permission_denied", "permission denied"),
                TargetNotFound => (S::NOT_FOUND, "user_not_found", format!("user: {target_id} not found").into()),
                AdminRequired => fixed(S::FORBIDDEN, "admin_required", "admin role required to perform this action"),
            },
            Outcome::TokenNotFound(token_id) => {
                (S::NOT_FOUND, "token_not_found", format!("pat: {token_id} not found").into())
            }
            Outcome::TooManyRequests => fixed(S::TOO_MANY_REQUESTS, "rate_limited", "too many requests"),
            Outcome::Internal(_) => fixed(S::INTERNAL_SERVER_ERROR, "internal_error", "internal server error"),
        }
    }

    /// One outcome of each row of the status table, ids as placeholders
    /// (`<id>`, `<userId>`, `<tokenId>`): the rows the documents must have.
    pub fn every() -> Vec<Outcome> {
        use crate::auth::reason::Reason;
        let refused = |refusal| Outcome::Refused { refusal, caller_id: "<id>".into(), target_id: "<userId>".into() };
        let unauthenticated = |reason: Reason| Outcome::Unauthenticated(reason.into());
        let every = vec![
            Outcome::Deleted,
            Outcome::Preflight,
            Outcome::MethodNotAllowed,
            Outcome::RouteNotFound,
            Outcome::BadRequest(INVALID_REQUEST),
            Outcome::BadRequest(BODY_TOO_LARGE),
            unauthenticated(Reason::HeaderAbsent),
            unauthenticated(Reason::JwtBadSignature),
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
                | Outcome::Unauthenticated(_)
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

impl From<IdError> for Outcome {
    fn from(err: IdError) -> Self {
        match err {
            IdError::User => Outcome::InvalidUserId,
            IdError::Token => Outcome::InvalidTokenId,
        }
    }
}

impl From<Refused> for Outcome {
    fn from(refused: Refused) -> Self {
        Outcome::Unauthenticated(refused)
    }
}

impl From<crate::auth::reason::Reason> for Outcome {
    fn from(reason: crate::auth::reason::Reason) -> Self {
        Refused::from(reason).into()
    }
}
