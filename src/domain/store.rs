//! What a delete needs from storage: the calls it makes to the tokens and
//! users tables, each ending within the request's [`Deadline`], and the
//! conditions of its writes as predicates. DynamoDB implements it
//! (`storage::dynamo`), as do an in-memory store for the tests
//! (`storage::memory`) and `make explain`'s store that never writes
//! (`storage::read_only`).

use std::future::Future;

use crate::deadline::Deadline;
use crate::domain::rate_limit::Payment;
use crate::domain::{PersonalAccessToken, User};
use crate::ids::{AccountId, TokenId, UserId};

/// A call failed, was not sent, or returned a row the function cannot
/// use; the detail is for logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {detail}")]
pub struct StoreError {
    pub operation: &'static str,
    pub detail: String,
}

impl StoreError {
    pub fn new(operation: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError { operation, detail: detail.to_string() }
    }
}

/// What a conditional delete did (spec §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// The row is gone; `name` was the token's name.
    Deleted { name: String },
    /// No such token under that user in that account; nothing changed.
    NotFound,
    /// An attempt was sent and no whole answer says what it did: it timed
    /// out (the deadline's cut included), lost its connection, got a 5xx,
    /// or its answer was cut after the status line; then a retry failed or
    /// found the row gone. `applied`: a cut answer's status said 2xx, so the
    /// row was deleted.
    Unconfirmed { applied: bool, cause: StoreError },
}

/// The condition of the write that records a PAT's use ([`Store::record_use`]):
/// the row still exists and, with a payment, its bucket admits it.
pub fn records_use(row: Option<&PersonalAccessToken>, payment: Option<Payment>) -> bool {
    row.is_some_and(|row| payment.is_none_or(|p| p.admits(row.rate_limited_until)))
}

/// The condition of the delete ([`Store::delete_token`]): the row exists,
/// in the caller's account.
pub fn deletes(row: Option<&PersonalAccessToken>, account_id: &AccountId) -> bool {
    row.is_some_and(|row| row.account_id == *account_id)
}

pub trait Store: Send + Sync + 'static {
    /// A cheap call at init, so the first request pays for no connection.
    fn warm_up(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user's row, read strongly consistent: a user blocked a moment
    /// ago is blocked now.
    fn user(
        &self,
        user_id: &UserId,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// The token whose hash is `hashed_token`, from an eventually
    /// consistent index: [`Store::record_use`] confirms the row exists.
    fn token_by_hash(
        &self,
        hashed_token: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<PersonalAccessToken>, StoreError>> + Send;

    /// The token row under `user_id` and `token_id`, read strongly
    /// consistent. The function never reads it (its role may not); `make
    /// explain` does, to judge the conditional writes without making them.
    fn token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<PersonalAccessToken>, StoreError>> + Send;

    /// One conditional write on `token`'s row: `lastUsed` becomes `now_ms`
    /// (in seconds) and `payment`, if any, is paid from its bucket, only if
    /// [`records_use`] holds. `Ok(false)`: it did not, and nothing was
    /// written. Never recreates a row.
    fn record_use(
        &self,
        token: &PersonalAccessToken,
        now_ms: u64,
        payment: Option<Payment>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the token if [`deletes`] holds for its row (one conditional
    /// delete). `Err` only when the delete was certainly not applied.
    fn delete_token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        account_id: &AccountId,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Deletion, StoreError>> + Send;
}
