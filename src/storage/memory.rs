//! The tables in memory, for tests of the request path without DynamoDB:
//! the same [`Store`] and [`SharedKeyCache`] the function uses, the same
//! conditions and the same deadline rule, faults on demand. The index on
//! `hashedToken` lags as DynamoDB's may: a token deleted, or a use recorded,
//! reaches it only at [`MemoryStore::settle`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::auth::provider::cache::{CachedKeySet, SharedKeyCache};
use crate::deadline::Deadline;
use crate::domain::rate_limit::Payment;
use crate::domain::store::{deletes, records_use, Deletion, Store, StoreError};
use crate::domain::{PersonalAccessToken, User};
use crate::ids::{AccountId, TokenId, UserId};
use crate::storage::client::OPERATION_TIMEOUT;

/// The calls a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    User,
    Token,
    TokenByHash,
    RecordUse,
    Delete,
    LoadKeys,
    StoreKeys,
}

/// What goes wrong with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refused, throttled on every attempt, or failed before it was
    /// applied: an error, nothing changed.
    Fails,
    /// A delete applied whose answer was lost, the retry finding no row.
    AnswerLost,
    /// A delete applied whose answer was cut after its 2xx status line.
    AnswerCut,
    /// No answer at all: the call takes the whole time it is given, then
    /// fails; a delete may have been applied (it was not).
    Hangs,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    users: HashMap<UserId, User>,
    tokens: BTreeMap<(UserId, TokenId), PersonalAccessToken>,
    /// `hashedToken-index`: copies of the rows as they were at the last settle.
    index: HashMap<String, PersonalAccessToken>,
    key_sets: HashMap<String, CachedKeySet>,
    faults: Vec<(Call, Fault)>,
    /// How long every call takes.
    latency: Duration,
}

impl MemoryStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn put_user(&self, user: User) {
        self.state().users.insert(user.user_id.clone(), user);
    }

    /// Writes the token's row, and its index entry at once.
    pub fn put_token(&self, token: PersonalAccessToken) {
        let mut state = self.state();
        state.index.insert(token.hashed_token.clone(), token.clone());
        state.tokens.insert((token.user_id.clone(), token.token_id.clone()), token);
    }

    pub fn token(&self, user_id: &str, token_id: &str) -> Option<PersonalAccessToken> {
        self.state().tokens.get(&(user_id.into(), token_id.into())).cloned()
    }

    /// Every token row, by user and token id.
    pub fn tokens(&self) -> Vec<PersonalAccessToken> {
        self.state().tokens.values().cloned().collect()
    }

    /// Removes a row behind the function's back (another writer); the index
    /// still finds it until [`MemoryStore::settle`].
    pub fn remove_token(&self, user_id: &str, token_id: &str) {
        self.state().tokens.remove(&(user_id.into(), token_id.into()));
    }

    /// The index catches up with the table.
    pub fn settle(&self) {
        let mut state = self.state();
        state.index = state.tokens.values().map(|t| (t.hashed_token.clone(), t.clone())).collect();
    }

    /// The next `call` meets `fault`.
    pub fn fail_next(&self, call: Call, fault: Fault) {
        self.state().faults.push((call, fault));
    }

    /// Every call takes `latency` from now on, as a distant table would.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// One call: the deadline rule, then the time it takes; a fault planned
    /// for `call` other than a delete's own is a failure.
    async fn call(&self, call: Call, operation: &'static str, deadline: &Deadline) -> Result<Option<Fault>, Failed> {
        let budget =
            deadline.budget(OPERATION_TIMEOUT).map_err(|late| Failed::NotSent(StoreError::new(operation, late)))?;
        let (fault, latency) = {
            let mut state = self.state();
            let planned = state.faults.iter().position(|(c, _)| *c == call);
            (planned.map(|at| state.faults.remove(at).1), state.latency)
        };
        let hangs = fault == Some(Fault::Hangs) || latency >= budget;
        tokio::time::sleep(if hangs { budget } else { latency }).await;
        match fault {
            _ if hangs => Err(Failed::TimedOut(StoreError::new(operation, "timed out"))),
            Some(Fault::Fails) => Err(Failed::Refused(StoreError::new(operation, "injected failure"))),
            other => Ok(other),
        }
    }
}

/// How a call failed: before it was sent, after (it may have been
/// applied), or refused (it was not).
enum Failed {
    NotSent(StoreError),
    TimedOut(StoreError),
    Refused(StoreError),
}

impl From<Failed> for StoreError {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::NotSent(error) | Failed::TimedOut(error) | Failed::Refused(error) => error,
        }
    }
}

impl Store for MemoryStore {
    async fn warm_up(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn user(&self, user_id: &UserId, deadline: &Deadline) -> Result<Option<User>, StoreError> {
        self.call(Call::User, "GetItem", deadline).await?;
        Ok(self.state().users.get(user_id).cloned())
    }

    async fn token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        deadline: &Deadline,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.call(Call::Token, "GetItem", deadline).await?;
        Ok(self.state().tokens.get(&(user_id.clone(), token_id.clone())).cloned())
    }

    async fn token_by_hash(
        &self,
        hashed_token: &str,
        deadline: &Deadline,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.call(Call::TokenByHash, "Query", deadline).await?;
        Ok(self.state().index.get(hashed_token).cloned())
    }

    async fn record_use(
        &self,
        token: &PersonalAccessToken,
        now_ms: u64,
        payment: Option<Payment>,
        deadline: &Deadline,
    ) -> Result<bool, StoreError> {
        self.call(Call::RecordUse, "UpdateItem", deadline).await?;
        let mut state = self.state();
        let row = state.tokens.get_mut(&(token.user_id.clone(), token.token_id.clone()));
        let Some(row) = row.filter(|row| records_use(Some(row), payment)) else { return Ok(false) };
        row.last_used = i64::try_from(now_ms / 1000).ok();
        if let Some(payment) = payment {
            row.rate_limited_until = Some(payment.paid(row.rate_limited_until));
        }
        Ok(true)
    }

    async fn delete_token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        account_id: &AccountId,
        deadline: &Deadline,
    ) -> Result<Deletion, StoreError> {
        let apply = || {
            let mut state = self.state();
            let key = (user_id.clone(), token_id.clone());
            deletes(state.tokens.get(&key), account_id).then(|| state.tokens.remove(&key)).flatten()
        };
        match self.call(Call::Delete, "DeleteItem", deadline).await {
            // Sent, and no answer came in time: it may have been applied.
            Err(Failed::TimedOut(cause)) => Ok(Deletion::Unconfirmed { applied: false, cause }),
            Err(failed) => Err(failed.into()),
            Ok(Some(fault @ (Fault::AnswerLost | Fault::AnswerCut))) => {
                apply();
                let cause = StoreError::new("DeleteItem", "no whole answer");
                Ok(Deletion::Unconfirmed { applied: fault == Fault::AnswerCut, cause })
            }
            Ok(_) => Ok(apply().map_or(Deletion::NotFound, |row| Deletion::Deleted { name: row.name })),
        }
    }
}

impl SharedKeyCache for MemoryStore {
    async fn load(&self, source: &str, deadline: &Deadline) -> Result<Option<CachedKeySet>, StoreError> {
        self.call(Call::LoadKeys, "GetItem", deadline).await?;
        Ok(self.state().key_sets.get(source).cloned())
    }

    async fn store(&self, source: &str, entry: &CachedKeySet, deadline: &Deadline) -> Result<bool, StoreError> {
        self.call(Call::StoreKeys, "PutItem", deadline).await?;
        let mut state = self.state();
        if state.key_sets.get(source).is_some_and(|held| !entry.replaces(held)) {
            return Ok(false);
        }
        state.key_sets.insert(source.to_owned(), entry.clone());
        Ok(true)
    }
}
