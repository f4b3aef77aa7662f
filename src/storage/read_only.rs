//! A store that never writes, for `make explain` (spec §11): reads pass
//! through; each conditional write becomes a read of its row and the
//! domain's own condition for that write ([`records_use`], [`deletes`]),
//! so the answer is the one the function would give, and nothing changes.

use std::sync::Arc;

use crate::auth::provider::cache::{CachedKeySet, SharedKeyCache};
use crate::deadline::Deadline;
use crate::domain::rate_limit::Payment;
use crate::domain::store::{deletes, records_use, Deletion, Store, StoreError};
use crate::domain::{PersonalAccessToken, User};
use crate::ids::{AccountId, TokenId, UserId};

pub struct ReadOnly<S>(pub Arc<S>);

impl<S: Store> Store for ReadOnly<S> {
    async fn warm_up(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn user(&self, user_id: &UserId, deadline: &Deadline) -> Result<Option<User>, StoreError> {
        self.0.user(user_id, deadline).await
    }

    async fn token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        deadline: &Deadline,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.0.token(user_id, token_id, deadline).await
    }

    async fn token_by_hash(
        &self,
        hashed_token: &str,
        deadline: &Deadline,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.0.token_by_hash(hashed_token, deadline).await
    }

    async fn record_use(
        &self,
        token: &PersonalAccessToken,
        _now_ms: u64,
        payment: Option<Payment>,
        deadline: &Deadline,
    ) -> Result<bool, StoreError> {
        let row = self.0.token(&token.user_id, &token.token_id, deadline).await?;
        Ok(records_use(row.as_ref(), payment))
    }

    async fn delete_token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        account_id: &AccountId,
        deadline: &Deadline,
    ) -> Result<Deletion, StoreError> {
        let row = self.0.token(user_id, token_id, deadline).await?;
        Ok(match row {
            Some(row) if deletes(Some(&row), account_id) => Deletion::Deleted { name: row.name },
            _ => Deletion::NotFound,
        })
    }
}

/// The fleet's key cache read, never written.
impl<S: SharedKeyCache> SharedKeyCache for ReadOnly<S> {
    async fn load(&self, source: &str, deadline: &Deadline) -> Result<Option<CachedKeySet>, StoreError> {
        self.0.load(source, deadline).await
    }

    async fn store(&self, _: &str, _: &CachedKeySet, _: &Deadline) -> Result<bool, StoreError> {
        Ok(false)
    }
}
