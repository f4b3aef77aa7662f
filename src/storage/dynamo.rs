//! The tables on DynamoDB (spec §5 and §7): the request path's calls
//! ([`Store`]) and the shared key cache ([`SharedKeyCache`]). Rows cross
//! as the domain's types, mapped by [`Row`]; every call takes its timeout
//! from the request's [`Deadline`].

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;

use crate::auth::provider::cache::{believable_until, CachedKeySet, SharedKeyCache};
use crate::config::{Config, ConfigError};
use crate::deadline::Deadline;
use crate::domain::rate_limit::Payment;
use crate::domain::store::{Deletion, Store, StoreError};
use crate::domain::{PersonalAccessToken, User};
use crate::ids::{AccountId, TokenId, UserId};
use crate::storage::client::{self, timeouts, OPERATION_TIMEOUT};
use crate::storage::items::{
    attr, key_cache_key, number_value, string_value, token_key, user_key, Item, KeyCacheItem, Row, HASHED_TOKEN_INDEX,
};

/// The users-table key the warm-up reads; whatever it finds is ignored.
const WARM_UP_KEY: &str = "warm up";
/// An SDK error as a [`StoreError`]: service errors by code and message
/// only, as their raw response is noise.
pub fn store_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| {
        let detail = match &e {
            SdkError::ServiceError(se) => {
                format!("{}: {}", se.err().code().unwrap_or("unknown"), se.err().message().unwrap_or_default())
            }
            _ => DisplayErrorContext(&e).to_string(),
        };
        StoreError::new(operation, detail)
    }
}

pub struct DynamoStore {
    client: Client,
    tokens_table: String,
    users_table: String,
    key_cache_table: Option<String>,
}

impl DynamoStore {
    pub fn new(client: Client, config: &Config) -> Self {
        DynamoStore {
            client,
            tokens_table: config.tokens_table.clone(),
            users_table: config.users_table.clone(),
            key_cache_table: config.key_cache_table.clone(),
        }
    }

    /// The function's store: a client from the environment's settings,
    /// refused when they would send it to an insecure endpoint (spec §6).
    pub async fn connect(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self::new(client::dynamodb_client(client::loader()).await?, config))
    }

    /// The item under `key` in `table`, read strongly consistent.
    async fn get(&self, table: &str, key: Item, deadline: &Deadline) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .customize()
            .config_override(within(deadline, "GetItem")?)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        Ok(out.item)
    }
}

impl Store for DynamoStore {
    /// Made twice at once, it opens the two connections a request may use
    /// at once (a PAT's UpdateItem beside a GetItem; two users' GetItems).
    async fn warm_up(&self) -> Result<(), StoreError> {
        self.get(&self.users_table, user_key(&UserId::from(WARM_UP_KEY)), &Deadline::Unknown).await.map(|_| ())
    }

    async fn user(&self, user_id: &UserId, deadline: &Deadline) -> Result<Option<User>, StoreError> {
        let Some(item) = self.get(&self.users_table, user_key(user_id), deadline).await? else { return Ok(None) };
        User::from_item(&item).map(Some).map_err(|e| StoreError::new("GetItem", format!("users row {user_id}: {e}")))
    }

    async fn token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        deadline: &Deadline,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        let Some(item) = self.get(&self.tokens_table, token_key(user_id, token_id), deadline).await? else {
            return Ok(None);
        };
        let token = PersonalAccessToken::from_item(&item);
        token.map(Some).map_err(|e| StoreError::new("GetItem", format!("tokens row {user_id}/{token_id}: {e}")))
    }

    async fn token_by_hash(
        &self,
        hashed_token: &str,
        deadline: &Deadline,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tokens_table)
            .index_name(HASHED_TOKEN_INDEX)
            .key_condition_expression("#hash = :hash")
            .expression_attribute_names("#hash", attr::HASHED_TOKEN)
            .expression_attribute_values(":hash", string_value(hashed_token))
            .limit(1)
            .customize()
            .config_override(within(deadline, "Query")?)
            .send()
            .await
            .map_err(store_error("Query"))?;
        let Some(item) = out.items().first() else { return Ok(None) };
        let token =
            PersonalAccessToken::from_item(item).map_err(|e| StoreError::new("Query", format!("tokens row: {e}")))?;
        Ok((token.hashed_token == hashed_token).then_some(token))
    }

    /// The condition names the key alone, so IAM can limit this write to
    /// `lastUsed` and the bucket: token ids are never reused, so the row
    /// under this key is the token the index found.
    async fn record_use(
        &self,
        token: &PersonalAccessToken,
        now_ms: u64,
        payment: Option<Payment>,
        deadline: &Deadline,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tokens_table)
            .set_key(Some(token_key(&token.user_id, &token.token_id)))
            .expression_attribute_names("#used", attr::LAST_USED)
            .expression_attribute_names("#token", attr::TOKEN_ID)
            .expression_attribute_values(":now", number_value(now_ms / 1000));
        let (update, condition, values) = match payment {
            None => ("SET #used = :now", "attribute_exists(#token)", vec![]),
            Some(Payment::Idle { now_ms, full_at_ms }) => (
                "SET #used = :now, #full = :full",
                "attribute_exists(#token) AND (attribute_not_exists(#full) OR #full <= :now_ms)",
                vec![(":now_ms", now_ms), (":full", full_at_ms)],
            ),
            Some(Payment::Busy { now_ms, interval_ms, limit_ms }) => (
                "SET #used = :now, #full = #full + :interval",
                "attribute_exists(#token) AND #full > :now_ms AND #full <= :limit",
                vec![(":now_ms", now_ms), (":interval", interval_ms), (":limit", limit_ms)],
            ),
        };
        if payment.is_some() {
            request = request.expression_attribute_names("#full", attr::RATE_LIMITED_UNTIL);
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, number_value(value));
        }
        let result = request
            .update_expression(update)
            .condition_expression(condition)
            .customize()
            .config_override(within(deadline, "UpdateItem")?)
            .send()
            .await;
        written(result, "UpdateItem")
    }

    async fn delete_token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        account_id: &AccountId,
        deadline: &Deadline,
    ) -> Result<Deletion, StoreError> {
        let attempts = Arc::new(Attempts::default());
        let result = self
            .client
            .delete_item()
            .table_name(&self.tokens_table)
            .set_key(Some(token_key(user_id, token_id)))
            .condition_expression("attribute_exists(#token) AND #account = :account")
            .expression_attribute_names("#token", attr::TOKEN_ID)
            .expression_attribute_names("#account", attr::ACCOUNT_ID)
            .expression_attribute_values(":account", string_value(account_id.as_str()))
            .return_values(ReturnValue::AllOld)
            .customize()
            .config_override(within(deadline, "DeleteItem")?)
            .interceptor(AttemptsInterceptor(attempts.clone()))
            .send()
            .await;
        let unconfirmed = |cause| Deletion::Unconfirmed { applied: attempts.applied(), cause };
        match result {
            Ok(out) => {
                // The audit wants the name; a malformed old row still was deleted.
                let old = out.attributes.unwrap_or_default();
                let name = PersonalAccessToken::from_item(&old).map(|t| t.name).unwrap_or_default();
                Ok(Deletion::Deleted { name })
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                if attempts.unanswered() > 0 {
                    let detail = "an earlier attempt got no whole answer; the retry found no such row";
                    Ok(unconfirmed(StoreError::new("DeleteItem", detail)))
                } else {
                    Ok(Deletion::NotFound)
                }
            }
            Err(e) if attempts.unanswered() > 0 => Ok(unconfirmed(store_error("DeleteItem")(e))),
            Err(e) => Err(store_error("DeleteItem")(e)),
        }
    }
}

/// The identity provider's keys, shared by every instance: one item per
/// key source in the key cache table.
impl SharedKeyCache for DynamoStore {
    async fn load(&self, source: &str, deadline: &Deadline) -> Result<Option<CachedKeySet>, StoreError> {
        let table = self.key_cache_table.as_deref().ok_or_else(|| StoreError::new("GetItem", "no key cache table"))?;
        let Some(item) = self.get(table, key_cache_key(source), deadline).await? else { return Ok(None) };
        let row =
            KeyCacheItem::from_item(&item).map_err(|e| StoreError::new("GetItem", format!("key cache row: {e}")))?;
        Ok(Some(row.entry))
    }

    /// The write's condition is [`SharedKeyCache::store`]'s rule: no entry,
    /// or one of the wrong shape, or one fetched earlier than this one, or
    /// too far ahead of it to be believed.
    async fn store(&self, source: &str, entry: &CachedKeySet, deadline: &Deadline) -> Result<bool, StoreError> {
        let table = self.key_cache_table.as_deref().ok_or_else(|| StoreError::new("PutItem", "no key cache table"))?;
        let row = KeyCacheItem { source: source.to_owned(), entry: entry.clone() };
        let result = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(row.to_item()))
            .condition_expression(
                "attribute_not_exists(#source) OR NOT attribute_type(#set, :string) \
                 OR NOT attribute_type(#fetched, :number) OR NOT attribute_type(#age, :number) \
                 OR #fetched < :fetched OR #fetched > :believable",
            )
            .expression_attribute_names("#source", attr::SOURCE)
            .expression_attribute_names("#set", attr::KEY_SET)
            .expression_attribute_names("#fetched", attr::FETCHED_AT)
            .expression_attribute_names("#age", attr::MAX_AGE)
            .expression_attribute_values(":string", string_value("S"))
            .expression_attribute_values(":number", string_value("N"))
            .expression_attribute_values(":fetched", number_value(entry.fetched_at_ms))
            .expression_attribute_values(":believable", number_value(believable_until(entry.fetched_at_ms)))
            .customize()
            .config_override(within(deadline, "PutItem")?)
            .send()
            .await;
        written(result, "PutItem")
    }
}

/// A conditional write's result: `false` when its condition failed and
/// nothing was written.
fn written<T, E, R>(result: Result<T, SdkError<E, R>>, operation: &'static str) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if e.err().code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(store_error(operation)(e)),
    }
}

/// One call's settings: its timeouts cut to the time `deadline` leaves; an
/// error, with nothing sent, when too little is left to make it.
fn within(deadline: &Deadline, operation: &'static str) -> Result<aws_sdk_dynamodb::config::Builder, StoreError> {
    let budget = deadline.budget(OPERATION_TIMEOUT).map_err(|late| StoreError::new(operation, late))?;
    Ok(aws_sdk_dynamodb::config::Builder::default().timeout_config(timeouts(budget)))
}

/// How many attempts of one call were sent, and how many got a whole
/// answer that says what happened: a status below 500 and a body read to
/// its end. A timeout, a lost connection, a 5xx or a body cut short leaves
/// the attempt unanswered: DynamoDB may have applied it.
#[derive(Debug, Default)]
struct Attempts {
    sent: AtomicU32,
    answered: AtomicU32,
    /// Some attempt's status line said 2xx, whatever became of its body.
    applied: AtomicBool,
}

impl Attempts {
    fn unanswered(&self) -> u32 {
        self.sent.load(Ordering::Relaxed).saturating_sub(self.answered.load(Ordering::Relaxed))
    }

    fn applied(&self) -> bool {
        self.applied.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct AttemptsInterceptor(Arc<Attempts>);

impl Intercept for AttemptsInterceptor {
    fn name(&self) -> &'static str {
        "Attempts"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.response().status().is_success() {
            self.0.applied.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Runs once the body was read (or failed to be): only then does the
    /// answer count.
    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let whole = match context.output_or_error() {
            Ok(_) => true,
            Err(error) => error.is_operation_error(),
        };
        if whole && context.response().status().as_u16() < 500 {
            self.0.answered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
