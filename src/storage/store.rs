//! The one place that talks to DynamoDB (spec §5 and §7). Rows cross it
//! as [`UserItem`], [`TokenItem`] and [`KeyCacheItem`]; every call a
//! request makes ends within its [`Deadline`].

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;

use futures_util::future::BoxFuture;

use crate::auth::provider_keys::{CachedKeySet, SharedKeyCache};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::ids::{AccountId, TokenId, UserId};
use crate::rate_limit::{Bucket, Step};
use crate::storage::client::{timeouts, OPERATION_TIMEOUT};
use crate::storage::items::{
    attr, key_cache_key, number_value, string_value, token_key, user_key, Item, KeyCacheItem, TokenItem, UserItem,
    HASHED_TOKEN_INDEX,
};

/// The users-table key the warm-up reads; whatever it finds is ignored.
const WARM_UP_KEY: &str = "warm up";
/// Less time than this left before the deadline: no call is started.
const MIN_CALL_TIME: Duration = Duration::from_millis(100);

/// A DynamoDB call failed, or returned a row the function cannot use; the
/// detail is for logs only.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation} failed: {detail}")]
pub struct StoreError {
    pub operation: &'static str,
    detail: String,
}

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
        StoreError { operation, detail }
    }
}

/// What became of a PAT's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatUse {
    /// Recorded (and paid for from its bucket, with a rate limit).
    Marked,
    /// The row is gone: the token was deleted a moment ago.
    Gone,
    /// Its bucket is empty (or, rarely, the row is gone as well): nothing
    /// was written.
    Limited,
}

/// The conditional writes that record a PAT's use: `lastUsed` only
/// (no rate limit), or `lastUsed` and a payment from the token's bucket
/// (spec §9), whose full-time `rateLimitedUntil` is at or before now
/// (idle) or after it and within the tolerance (busy).
#[derive(Debug, Clone, Copy)]
enum UseWrite {
    Mark,
    PayIdle { full_at_ms: u64 },
    PayBusy { interval_ms: u64, limit_ms: u64 },
}

impl UseWrite {
    /// The update and condition expressions (`#used` is `lastUsed`,
    /// `#token` the key, `#full` the bucket's full-time).
    fn expressions(self) -> (&'static str, &'static str) {
        match self {
            UseWrite::Mark => ("SET #used = :now", "attribute_exists(#token)"),
            UseWrite::PayIdle { .. } => (
                "SET #used = :now, #full = :full",
                "attribute_exists(#token) AND (attribute_not_exists(#full) OR #full <= :now_ms)",
            ),
            UseWrite::PayBusy { .. } => (
                "SET #used = :now, #full = #full + :interval",
                "attribute_exists(#token) AND #full > :now_ms AND #full <= :limit",
            ),
        }
    }

    /// The bucket's values in those expressions, at `now_ms`; none for `Mark`.
    fn bucket_values(self, now_ms: u64) -> Vec<(&'static str, u64)> {
        match self {
            UseWrite::Mark => vec![],
            UseWrite::PayIdle { full_at_ms } => vec![(":now_ms", now_ms), (":full", full_at_ms)],
            UseWrite::PayBusy { interval_ms, limit_ms } => {
                vec![(":now_ms", now_ms), (":interval", interval_ms), (":limit", limit_ms)]
            }
        }
    }
}

/// What a conditional delete did.
#[derive(Debug)]
pub enum Deletion {
    /// The row is gone; `name` was the token's name.
    Deleted { name: String },
    /// No such token under that user in that account; nothing changed.
    NotFound,
    /// An attempt was sent and no whole answer says what it did (spec §7):
    /// it timed out (the deadline's cut included), lost its connection, got
    /// a 5xx, or its answer was cut after the status line; then a retry
    /// failed or found the row gone. `applied`: a cut answer's status said
    /// 2xx, so DynamoDB did delete the row.
    Unconfirmed { applied: bool, cause: StoreError },
}

pub struct Store {
    client: Client,
    tokens_table: String,
    users_table: String,
    key_cache_table: Option<String>,
}

impl Store {
    pub fn new(client: Client, config: &Config) -> Self {
        Store {
            client,
            tokens_table: config.tokens_table.clone(),
            users_table: config.users_table.clone(),
            key_cache_table: config.key_cache_table.clone(),
        }
    }

    /// A cheap read during init, while Lambda gives the CPU in full: the
    /// first request then pays for no DNS, TCP, TLS or credentials. Made
    /// twice at once, it opens the two connections a request may use at
    /// once (a PAT's UpdateItem beside a GetItem; two users' GetItems).
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        self.get_user(&UserId::from(WARM_UP_KEY), &Deadline::Unknown).await.map(|_| ())
    }

    /// Strongly consistent: a user blocked a moment ago is blocked now.
    pub async fn user(&self, user_id: &UserId, deadline: &Deadline) -> Result<Option<UserItem>, StoreError> {
        let Some(item) = self.get_user(user_id, deadline).await? else { return Ok(None) };
        UserItem::from_item(&item)
            .map(Some)
            .map_err(|e| StoreError { operation: "GetItem", detail: format!("users row {user_id}: {e}") })
    }

    async fn get_user(&self, user_id: &UserId, deadline: &Deadline) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.users_table)
            .set_key(Some(user_key(user_id)))
            .consistent_read(true)
            .customize()
            .config_override(within(deadline, "GetItem")?)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        Ok(out.item)
    }

    /// The token row whose hash is `hashed_token`. The index is eventually
    /// consistent: [`Store::mark_used`] confirms the row still exists.
    pub async fn token_by_hash(
        &self,
        hashed_token: &str,
        deadline: &Deadline,
    ) -> Result<Option<TokenItem>, StoreError> {
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
        let token = TokenItem::from_item(item)
            .map_err(|e| StoreError { operation: "Query", detail: format!("tokens row: {e}") })?;
        Ok((token.hashed_token == hashed_token).then_some(token))
    }

    /// Records a PAT's use on the table itself rather than the index, only
    /// if the row still exists (the index may lag a delete); never recreates
    /// a row. The condition names the key alone, so IAM can limit this write
    /// to `lastUsed` (and the bucket): token ids are never reused, so the row
    /// under this key is the token the index found. With a rate limit, the
    /// same write pays for the request from the token's bucket (spec §9).
    pub async fn mark_used(
        &self,
        token: &TokenItem,
        now_ms: u64,
        bucket: Option<&Bucket>,
        deadline: &Deadline,
    ) -> Result<PatUse, StoreError> {
        let Some(bucket) = bucket else {
            let marked = self.record_use(token, now_ms, UseWrite::Mark, deadline).await?;
            return Ok(if marked { PatUse::Marked } else { PatUse::Gone });
        };
        let idle = UseWrite::PayIdle { full_at_ms: now_ms.saturating_add(bucket.interval_ms) };
        let busy = UseWrite::PayBusy { interval_ms: bucket.interval_ms, limit_ms: bucket.limit(now_ms) };
        // A failed first guess (the index's copy was stale, or another
        // instance paid first) gets one more write, the other case's. When
        // both fail the bucket is over its limit, or the row is gone: either
        // way the request is refused and nothing was written.
        let paid = match bucket.first_step(token.rate_limited_until, now_ms) {
            Step::Refuse => false,
            Step::Idle => {
                self.record_use(token, now_ms, idle, deadline).await?
                    || self.record_use(token, now_ms, busy, deadline).await?
            }
            Step::Busy => self.record_use(token, now_ms, busy, deadline).await?,
        };
        Ok(if paid { PatUse::Marked } else { PatUse::Limited })
    }

    /// `write` to `token`'s row, at `now_ms`: `false` when its condition
    /// failed (nothing was written).
    async fn record_use(
        &self,
        token: &TokenItem,
        now_ms: u64,
        write: UseWrite,
        deadline: &Deadline,
    ) -> Result<bool, StoreError> {
        let (update, condition) = write.expressions();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tokens_table)
            .set_key(Some(token_key(&token.user_id, &token.token_id)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#used", attr::LAST_USED)
            .expression_attribute_names("#token", attr::TOKEN_ID)
            .expression_attribute_values(":now", number_value(now_ms / 1000));
        let bucket_values = write.bucket_values(now_ms);
        if !bucket_values.is_empty() {
            request = request.expression_attribute_names("#full", attr::RATE_LIMITED_UNTIL);
        }
        for (name, value) in bucket_values {
            request = request.expression_attribute_values(name, number_value(value));
        }
        let result = request.customize().config_override(within(deadline, "UpdateItem")?).send().await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(store_error("UpdateItem")(e)),
        }
    }

    /// Deletes the token if it is `user_id`'s and in `account_id` (spec §5:
    /// one conditional DeleteItem), within `deadline`. `Err` only when
    /// DynamoDB certainly did not apply it.
    pub async fn delete_token(
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
                Ok(Deletion::Deleted { name: TokenItem::from_item(&old).map(|t| t.name).unwrap_or_default() })
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                if attempts.unanswered() > 0 {
                    let detail = "an earlier attempt got no whole answer; the retry found no such row".to_owned();
                    Ok(unconfirmed(StoreError { operation: "DeleteItem", detail }))
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
impl SharedKeyCache for Store {
    fn load<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Option<CachedKeySet>, String>> {
        Box::pin(async move {
            let table = self.key_cache_table.as_deref().ok_or("no key cache table")?;
            let out = self
                .client
                .get_item()
                .table_name(table)
                .set_key(Some(key_cache_key(source)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| store_error("GetItem")(e).to_string())?;
            let Some(item) = out.item else { return Ok(None) };
            KeyCacheItem::from_item(&item).map(|row| Some(row.entry)).map_err(|e| format!("key cache row: {e}"))
        })
    }

    fn store<'a>(&'a self, source: &'a str, entry: &'a CachedKeySet) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let table = self.key_cache_table.as_deref().ok_or("no key cache table")?;
            let row = KeyCacheItem { source: source.to_owned(), entry: entry.clone() };
            let result = self
                .client
                .put_item()
                .table_name(table)
                .set_item(Some(row.to_item()))
                .condition_expression("attribute_not_exists(#source) OR #fetched < :fetched")
                .expression_attribute_names("#source", attr::SOURCE)
                .expression_attribute_names("#fetched", attr::FETCHED_AT)
                .expression_attribute_values(":fetched", number_value(entry.fetched_at_ms))
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
                Err(e) => Err(store_error("PutItem")(e).to_string()),
            }
        })
    }
}

/// One call's settings when it must end within `deadline`; an error, with
/// nothing sent, when too little time is left to make it.
fn within(deadline: &Deadline, operation: &'static str) -> Result<aws_sdk_dynamodb::config::Builder, StoreError> {
    let budget = deadline.bound(OPERATION_TIMEOUT);
    if budget < MIN_CALL_TIME {
        let detail = format!("not sent: {} ms left before the Lambda deadline", budget.as_millis());
        return Err(StoreError { operation, detail });
    }
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
