//! The store contract: every call the request path makes, with its
//! condition, on DynamoDB Local (what the function runs on) and on the
//! in-memory store (what the unit tests of `App` run on), so the double
//! cannot drift from DynamoDB. Then what DynamoDB alone can show: rows of
//! the wrong type, tables that differ from the schema, cache entries of the
//! wrong shape.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType};
use netbird_delete_token::auth::provider::cache::{CachedKeySet, SharedKeyCache};
use netbird_delete_token::config::Config;
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::domain::rate_limit::Payment;
use netbird_delete_token::domain::store::{records_use, Deletion, Store};
use netbird_delete_token::ids::{TokenId, UserId};
use netbird_delete_token::storage::dynamo::DynamoStore;
use netbird_delete_token::storage::items::{Item, KeyCacheItem};
use netbird_delete_token::storage::memory::MemoryStore;
use netbird_delete_token::storage::read_only::ReadOnly;

/// Rows written behind the store's back, as another writer would.
trait Seed {
    async fn put_user(&self, user: User);
    async fn put_token(&self, token: PersonalAccessToken);
}

impl Seed for MemoryStore {
    async fn put_user(&self, user: User) {
        MemoryStore::put_user(self, user)
    }

    async fn put_token(&self, token: PersonalAccessToken) {
        MemoryStore::put_token(self, token)
    }
}

impl Seed for Stack {
    async fn put_user(&self, user: User) {
        let table = &self.config.users_table;
        self.client.put_item().table_name(table).set_item(Some(user.to_item())).send().await.unwrap();
    }

    async fn put_token(&self, token: PersonalAccessToken) {
        let table = &self.config.tokens_table;
        self.client.put_item().table_name(table).set_item(Some(token.to_item())).send().await.unwrap();
    }
}

fn row(token_id: &str, account: &str, rate_limited_until: Option<u64>) -> PersonalAccessToken {
    PersonalAccessToken {
        user_id: "u".into(),
        token_id: token_id.into(),
        account_id: account.into(),
        name: format!("name of {token_id}"),
        hashed_token: format!("hash of {token_id}"),
        expires_at: Some(now() + 86_400),
        created_at: Some(now()),
        created_by: Some("u".into()),
        last_used: None,
        rate_limited_until,
    }
}

fn entry(fetched_at_ms: u64) -> CachedKeySet {
    CachedKeySet { document: format!("set of {fetched_at_ms}"), fetched_at_ms, max_age_secs: 60 }
}

/// The contract, on `store`, with rows written through `seed`; `make
/// explain`'s store on it answers each write as the write would, and
/// writes nothing.
async fn contract<S: Store + SharedKeyCache>(store: &Arc<S>, seed: &impl Seed) {
    let (time, dry) = (Deadline::Unknown, ReadOnly(store.clone()));
    let user = User {
        user_id: "u".into(),
        account_id: ACCOUNT.into(),
        role: Role::Admin,
        is_service_user: true,
        service_user_name: Some("bot".into()),
        blocked: false,
        pending_approval: true,
    };
    // Reads: a user, a token by its key and by its hash, each as written.
    assert_eq!(store.user(&"u".into(), &time).await, Ok(None));
    seed.put_user(user.clone()).await;
    assert_eq!(store.user(&"u".into(), &time).await, Ok(Some(user)));
    let token = row("t", ACCOUNT, None);
    seed.put_token(token.clone()).await;
    assert_eq!(store.token(&"u".into(), &"t".into(), &time).await, Ok(Some(token.clone())));
    assert_eq!(store.token(&"u".into(), &"none".into(), &time).await, Ok(None));
    assert_eq!(store.token_by_hash("hash of t", &time).await, Ok(Some(token.clone())));
    assert_eq!(store.token_by_hash("hash of none", &time).await, Ok(None));

    // A PAT's use: written exactly when the domain's condition holds, and
    // never onto a row that is gone.
    let now = now_ms();
    let (interval, limit) = (1_000, now + 5_000);
    let payments = [
        None,
        Some(Payment::Idle { now_ms: now, full_at_ms: now + interval }),
        Some(Payment::Busy { now_ms: now, interval_ms: interval, limit_ms: limit }),
    ];
    let buckets = [None, Some(now - 1), Some(now), Some(now + 1), Some(limit), Some(limit + 1)];
    for (i, (payment, full_at)) in payments.iter().flat_map(|p| buckets.map(|b| (*p, b))).enumerate() {
        let before = row(&format!("p{i}"), ACCOUNT, full_at);
        seed.put_token(before.clone()).await;
        let want = records_use(Some(&before), payment);
        assert_eq!(dry.record_use(&before, now, payment, &time).await, Ok(want), "dry: {payment:?} on {full_at:?}");
        assert_eq!(store.token(&"u".into(), &before.token_id, &time).await, Ok(Some(before.clone())), "dry wrote");
        assert_eq!(store.record_use(&before, now, payment, &time).await, Ok(want), "{payment:?} on {full_at:?}");
        let after = store.token(&"u".into(), &before.token_id, &time).await.unwrap().unwrap();
        let paid = PersonalAccessToken {
            last_used: Some((now / 1000) as i64),
            rate_limited_until: payment.map_or(full_at, |p| Some(p.paid(full_at))),
            ..before.clone()
        };
        assert_eq!(after, if want { paid } else { before }, "{payment:?} on {full_at:?}");
    }
    let gone = row("gone", ACCOUNT, None);
    assert_eq!(dry.record_use(&gone, now, None, &time).await, Ok(false));
    assert_eq!(store.record_use(&gone, now, None, &time).await, Ok(false), "no row, no write");
    assert_eq!(store.token(&"u".into(), &"gone".into(), &time).await, Ok(None), "never recreated");

    // The delete: only in the caller's account, and only once however
    // many race for it.
    let (u, t, account) = (UserId::from("u"), TokenId::from("t"), ACCOUNT.into());
    let other = row("other", "acc-2", None);
    seed.put_token(other.clone()).await;
    assert_eq!(dry.delete_token(&"u".into(), &"other".into(), &account, &time).await, Ok(Deletion::NotFound));
    assert_eq!(store.delete_token(&"u".into(), &"other".into(), &account, &time).await, Ok(Deletion::NotFound));
    assert_eq!(store.token(&"u".into(), &"other".into(), &time).await, Ok(Some(other)));
    // Answered as deleted, and left for the race to delete once.
    let named = Deletion::Deleted { name: "name of t".into() };
    assert_eq!(dry.delete_token(&u, &t, &account, &time).await, Ok(named.clone()));
    let deletes = (0..8).map(|_| store.delete_token(&u, &t, &account, &time));
    let ended = futures_util::future::join_all(deletes).await;
    let deleted = ended.iter().filter(|d| **d == Ok(named.clone())).count();
    let not_found = ended.iter().filter(|d| **d == Ok(Deletion::NotFound)).count();
    assert_eq!((deleted, not_found), (1, 7));
    assert_eq!(store.token(&"u".into(), &"t".into(), &time).await, Ok(None));

    // With less time left than a call needs, nothing is sent.
    let late = Deadline::after(Duration::from_millis(50));
    seed.put_token(token.clone()).await;
    assert!(store.user(&"u".into(), &late).await.is_err());
    assert!(store.token_by_hash("hash of t", &late).await.is_err());
    assert!(store.record_use(&token, now + 9_000, None, &late).await.is_err());
    assert!(store.delete_token(&"u".into(), &"t".into(), &account, &late).await.is_err());
    assert!(store.load("src", &late).await.is_err() && store.store("src", &entry(1), &late).await.is_err());
    assert_eq!(store.load("src", &time).await, Ok(None), "not written late");
    assert_eq!(store.token(&"u".into(), &"t".into(), &time).await, Ok(Some(token)), "untouched");

    // The fleet's key cache: one entry per source, never replaced by an
    // older or same-time set, always by a newer one or one from the future.
    let at = now;
    for (i, (held, offered, replaces)) in [
        (None, at, true),
        (Some(at), at - 1, false),
        (Some(at), at, false),
        (Some(at), at + 1, true),
        (Some(at + 61_000), at, true),
    ]
    .into_iter()
    .enumerate()
    {
        let source = format!("src {i}");
        assert_eq!(store.load(&source, &time).await, Ok(None));
        if let Some(held) = held {
            assert_eq!(store.store(&source, &entry(held), &time).await, Ok(true), "an empty source takes any set");
        }
        assert_eq!(dry.store(&source, &entry(offered), &time).await, Ok(false), "dry: never written");
        assert_eq!(store.store(&source, &entry(offered), &time).await, Ok(replaces), "{held:?} then {offered}");
        let want = if replaces { entry(offered) } else { entry(held.unwrap()) };
        assert_eq!(store.load(&source, &time).await, Ok(Some(want)), "{held:?} then {offered}");
    }
    let racing = (0..12).map(|i| async move { store.store("race", &entry(at + (i * 7) % 12), &time).await });
    assert!(futures_util::future::join_all(racing).await.iter().all(Result::is_ok));
    assert_eq!(store.load("race", &time).await, Ok(Some(entry(at + 11))), "the newest of a race stays");
    assert_eq!(store.load("other", &time).await, Ok(None), "each source its own entry");
}

#[tokio::test]
async fn the_in_memory_store_keeps_the_contract() {
    let store = Arc::new(MemoryStore::default());
    contract(&store, store.as_ref()).await;
}

/// Straight to DynamoDB Local: these calls are the store's, with keys and
/// sources of the test's choosing, not the function's (which the IAM check
/// reads from the recording proxy).
async fn unrecorded() -> Stack {
    Stack::with_endpoint(&endpoint()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_keeps_the_contract() {
    let stack = unrecorded().await;
    contract(&stack.store, &stack).await;
}

/// A users row without a string account, as a careless writer may leave
/// one: the store's read is an error naming the row and the attribute,
/// never a pass (how each attribute is read is `storage::items`' tests).
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_a_malformed_users_row_is_an_error_naming_it() {
    let stack = unrecorded().await;
    stack.put_user("no-account", ACCOUNT, "owner", &[(attr::ACCOUNT_ID, AttributeValue::N("1".into()))]).await;
    let error = stack.store.user(&"no-account".into(), &Deadline::Unknown).await.unwrap_err();
    assert!(error.to_string().contains("no-account") && error.to_string().contains("accountId"), "{error}");
}

/// An existing table that differs from the schema (docs/spec.md §5): a
/// tokens table without its `hashedToken-index`, a users table keyed on
/// another attribute. Each call fails, never a wrong answer.
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_tables_that_differ_from_the_schema_fail_their_calls() {
    let stack = Stack::new().await;
    let suffix = format!("{}-{}", std::process::id(), now_ms());
    let create = |name: String, keys: &'static [(&'static str, KeyType)]| {
        let client = stack.client.clone();
        async move {
            let mut request = client.create_table().table_name(&name).billing_mode(BillingMode::PayPerRequest);
            for (attribute, kind) in keys {
                let definition = AttributeDefinition::builder().attribute_name(*attribute);
                let definition = definition.attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S);
                let key = KeySchemaElement::builder().attribute_name(*attribute).key_type(kind.clone());
                request = request.attribute_definitions(definition.build().unwrap()).key_schema(key.build().unwrap());
            }
            request.send().await.unwrap();
            name
        }
    };
    let tokens_table = create(format!("no-index-{suffix}"), &[("userId", KeyType::Hash), ("tokenId", KeyType::Range)]);
    let users_table = create(format!("other-key-{suffix}"), &[("id", KeyType::Hash)]);
    let config = Config { tokens_table: tokens_table.await, users_table: users_table.await, ..stack.config.clone() };
    let store = DynamoStore::new(stack.client.clone(), &config);
    let time = Deadline::Unknown;
    let without_index = store.token_by_hash("h", &time).await.unwrap_err().to_string();
    assert!(without_index.contains("Query"), "{without_index}");
    let other_key = store.user(&"u".into(), &time).await.unwrap_err().to_string();
    assert!(other_key.contains("GetItem"), "{other_key}");
}

/// The cache write's condition, on DynamoDB: an entry of the wrong shape
/// is replaced by the next fetch; its read is an error, never keys.
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_replaces_a_cache_entry_of_the_wrong_shape() {
    let stack = unrecorded().await;
    let store = Arc::clone(&stack.store);
    let table = stack.config.key_cache_table.clone().unwrap();
    let fresh = entry(now_ms());
    let held = KeyCacheItem { source: "src".into(), entry: entry(now_ms() + 10_000) }.to_item();
    let with = |name: &str, value: Option<AttributeValue>| {
        let mut row: Item = held.clone();
        match value {
            Some(value) => row.insert(name.to_owned(), value),
            None => row.remove(name),
        };
        row
    };
    for (what, row) in [
        ("fetchedAt missing", with(attr::FETCHED_AT, None)),
        ("fetchedAt a string", with(attr::FETCHED_AT, Some(AttributeValue::S("1".into())))),
        ("keySet a number", with(attr::KEY_SET, Some(AttributeValue::N("1".into())))),
        ("maxAge missing", with(attr::MAX_AGE, None)),
    ] {
        stack.client.put_item().table_name(&table).set_item(Some(row)).send().await.unwrap();
        assert!(store.load("src", &Deadline::Unknown).await.is_err(), "{what}: never read as keys");
        assert_eq!(store.store("src", &fresh, &Deadline::Unknown).await, Ok(true), "{what}");
        assert_eq!(store.load("src", &Deadline::Unknown).await, Ok(Some(fresh.clone())), "{what}");
    }
}
