//! The identity provider's keys, shared by every instance through the key
//! cache table: cold starts that find a fresh entry never ask the provider,
//! a rotated key reaches other instances through the cache, the newest set
//! always wins, an outage is ridden out within the stale limit, and a bad
//! or foreign entry is never trusted. Each instance is the real binary.

use std::time::Duration;

use crate::common::idp::{Idp, Reply};
use crate::common::runtime_api::{function_binary, Function, RuntimeApi};
use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use netbird_delete_token::auth::provider_keys::{CachedKeySet, SharedKeyCache};
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::devkeys::{jwks_json, DevKey};
use netbird_delete_token::storage::dynamo::DynamoStore;
use netbird_delete_token::storage::items::{attr, Item, KeyCacheItem};
use serde_json::json;

const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// A provider that publishes `keys` by discovery, as NetBird is set up.
async fn provider(keys: &str) -> Idp {
    let idp = Idp::start().await;
    idp.set(WELL_KNOWN, Reply::json(json!({ "issuer": ISSUER, "jwks_uri": idp.url("/certs") }).to_string()));
    idp.set("/certs", Reply::json(keys).with_header("cache-control", "max-age=3600"));
    idp
}

fn asked(idp: &Idp) -> usize {
    idp.hits(WELL_KNOWN) + idp.hits("/certs")
}

/// A cold start with `settings` in place of the inline keys, past init.
async fn cold_start(stack: &Stack, settings: &[(&'static str, String)]) -> (RuntimeApi, Function) {
    let runtime = RuntimeApi::start().await;
    let mut env = stack.function_env(&stack.dynamodb);
    env.retain(|(k, _)| *k != "AUTH_JWKS");
    env.extend(settings.iter().cloned());
    let function = Function::spawn(function_binary(), &runtime, &env);
    runtime.wait_first_poll(Duration::from_secs(20)).await.expect("the function finished init");
    (runtime, function)
}

async fn by_discovery(stack: &Stack, idp: &Idp) -> (RuntimeApi, Function) {
    cold_start(stack, &[("AUTH_OIDC_CONFIG_ENDPOINT", idp.url(WELL_KNOWN))]).await
}

async fn delete(runtime: &RuntimeApi, token_id: &str, authorization: &str) -> Answer {
    http_answer(runtime.invoke(&http_api_event("DELETE", "o", token_id, Some(authorization))).await)
}

fn bearer(key: &DevKey) -> String {
    format!("Bearer {}", key.sign(&claims("o")).unwrap())
}

/// The account, with tokens `t1`..`t9` of the owner `o`.
async fn account() -> Stack {
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    for i in 1..10 {
        stack.live_token("o", &format!("t{i}")).await;
    }
    stack
}

/// Every row of the key cache table.
async fn cache_rows(stack: &Stack) -> Vec<Item> {
    let table = stack.config.key_cache_table.as_deref().unwrap();
    stack.client.scan().table_name(table).consistent_read(true).send().await.unwrap().items.unwrap_or_default()
}

/// Sets `attribute` of the (only) key cache row.
async fn alter_cache_row(stack: &Stack, attribute: &str, value: AttributeValue) {
    let rows = cache_rows(stack).await;
    assert_eq!(rows.len(), 1, "one source, one row");
    let key = Item::from([(attr::SOURCE.to_owned(), rows[0][attr::SOURCE].clone())]);
    let table = stack.config.key_cache_table.as_deref().unwrap();
    let update = stack.client.update_item().table_name(table).set_key(Some(key)).update_expression("SET #a = :v");
    update.expression_attribute_names("#a", attribute).expression_attribute_values(":v", value).send().await.unwrap();
}

/// A first instance fills the cache (and is gone).
async fn seed(stack: &Stack, idp: &Idp) {
    let (runtime, function) = by_discovery(stack, idp).await;
    assert_eq!(delete(&runtime, "t9", &bearer(&stack.keys.es256)).await.status, 200);
    function.stop().await;
    assert_eq!(cache_rows(stack).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_cold_start_asks_the_provider_nothing() {
    let stack = account().await;
    let idp = provider(&stack.keys.jwks()).await;
    let (first, f1) = by_discovery(&stack, &idp).await;
    assert_eq!(delete(&first, "t1", &bearer(&stack.keys.es256)).await.status, 200);
    assert_eq!(asked(&idp), 2, "the first instance read the configuration and the key set");
    let row = KeyCacheItem::from_item(&cache_rows(&stack).await[0]).unwrap();
    assert_eq!(row.entry.max_age_secs, 3600);
    assert_eq!(row.entry.document, stack.keys.jwks(), "the key set as the provider served it");

    let (second, f2) = by_discovery(&stack, &idp).await;
    let got = delete(&second, "t2", &bearer(&stack.keys.rs256)).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    assert_eq!(asked(&idp), 2, "the second instance asked the provider nothing");
    assert!(stack.token_item("o", "t1").await.is_none() && stack.token_item("o", "t2").await.is_none());
    f1.stop().await;
    f2.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_reaches_a_second_instance_through_the_cache() {
    let stack = account().await;
    let idp = provider(&stack.keys.jwks()).await;
    seed(&stack, &idp).await;
    let (a, fa) = by_discovery(&stack, &idp).await;
    let (b, fb) = by_discovery(&stack, &idp).await;
    assert_eq!(asked(&idp), 2, "both started from the cache");

    let rotated = DevKey::generate_es256("rotated").unwrap();
    idp.set("/certs", Reply::json(jwks_json(&[&stack.keys.es256, &rotated]).unwrap()));
    assert_eq!(delete(&a, "t1", &bearer(&rotated)).await.status, 200);
    assert_eq!(asked(&idp), 4, "A asked the provider for the unknown key");
    let got = delete(&b, "t2", &bearer(&rotated)).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    assert_eq!(asked(&idp), 4, "B found the new key in the cache");
    assert!(stack.token_item("o", "t1").await.is_none() && stack.token_item("o", "t2").await.is_none());
    assert!(stack.token_item("o", "t3").await.is_some());
    fa.stop().await;
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refreshes_keep_the_newest_set() {
    let stack = Stack::new().await;
    let store = std::sync::Arc::new(DynamoStore::new(stack.client.clone(), &stack.config));
    let entry =
        |fetched_at_ms| CachedKeySet { document: format!("set {fetched_at_ms}"), fetched_at_ms, max_age_secs: 60 };
    let mut order: Vec<u64> = (1..=12).map(|i| 1_700_000_000_000 + (i * 7919) % 12).collect();
    order.sort_by_key(|t| t % 5);
    let writes = order.iter().map(|&t| {
        let store = store.clone();
        tokio::spawn(async move { store.store("src", &entry(t), &Deadline::Unknown).await.unwrap() })
    });
    let written = futures_util::future::join_all(writes).await.into_iter().filter(|w| *w.as_ref().unwrap()).count();
    assert!(written >= 1);
    let newest = *order.iter().max().unwrap();
    assert_eq!(store.load("src", &Deadline::Unknown).await.unwrap(), Some(entry(newest)));
    assert_eq!(
        store.store("src", &entry(newest - 1), &Deadline::Unknown).await,
        Ok(false),
        "an older set never replaces it"
    );
    assert_eq!(store.load("src", &Deadline::Unknown).await.unwrap(), Some(entry(newest)));
    assert_eq!(store.store("src", &entry(newest + 1), &Deadline::Unknown).await, Ok(true));
    assert_eq!(store.load("other", &Deadline::Unknown).await.unwrap(), None, "each source its own entry");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_provider_down_costs_nothing_with_a_fresh_cache_and_is_a_500_past_the_stale_limit() {
    let stack = account().await;
    let idp = provider(&stack.keys.jwks()).await;
    seed(&stack, &idp).await;
    let down = Reply { status: 503, headers: Vec::new(), body: "down".into() };
    idp.set(WELL_KNOWN, down.clone());
    idp.set("/certs", down);
    let before = asked(&idp);
    let (runtime, function) = by_discovery(&stack, &idp).await;
    assert_eq!(delete(&runtime, "t1", &bearer(&stack.keys.es256)).await.status, 200);
    assert!(stack.token_item("o", "t1").await.is_none());
    assert_eq!(asked(&idp), before, "a fresh cache: the provider is not asked");
    function.stop().await;

    // The entry expired 48 h ago: 24 h past the stale limit.
    let long_ago = now() as u64 * 1000 - 49 * 3_600_000;
    alter_cache_row(&stack, attr::FETCHED_AT, AttributeValue::N(long_ago.to_string())).await;
    let (runtime, function) = by_discovery(&stack, &idp).await;
    let got = delete(&runtime, "t2", &bearer(&stack.keys.es256)).await;
    assert_eq!((got.status, got.body), error(500, "internal server error"));
    assert!(stack.token_item("o", "t2").await.is_some());
    let lines = function.stop().await.join("\n");
    assert!(lines.contains("expired over 24 h ago"), "{lines}");
    assert!(asked(&idp) > before, "the provider was tried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_key_source_never_reads_the_old_entry() {
    let stack = account().await;
    let stranger = DevKey::generate_es256("stranger").unwrap();
    let old = provider(&stranger.jwks_json().unwrap()).await;
    let (runtime, function) = cold_start(&stack, &[("AUTH_KEYS_LOCATION", old.url("/certs"))]).await;
    // The stranger's token is good for the old source (the user is the same).
    assert_eq!(delete(&runtime, "t1", &bearer(&stranger)).await.status, 200);
    assert!(stack.token_item("o", "t1").await.is_none());
    function.stop().await;
    assert_eq!(cache_rows(&stack).await.len(), 1);

    let new = provider(&stack.keys.jwks()).await;
    let (runtime, function) = by_discovery(&stack, &new).await;
    let refused = delete(&runtime, "t2", &bearer(&stranger)).await;
    assert_eq!((refused.status, refused.body), error(401, "token invalid"));
    assert_eq!(delete(&runtime, "t3", &bearer(&stack.keys.es256)).await.status, 200);
    assert!(stack.token_item("o", "t3").await.is_none());
    assert_eq!(asked(&new), 2, "the new source was fetched");
    assert_eq!(cache_rows(&stack).await.len(), 2, "one entry per source");
    assert!(stack.token_item("o", "t2").await.is_some());
    function.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_entry_that_is_no_key_set_is_ignored_and_the_provider_asked() {
    for bad in [AttributeValue::S("not a key set".into()), AttributeValue::N("7".into())] {
        let stack = account().await;
        let idp = provider(&stack.keys.jwks()).await;
        seed(&stack, &idp).await;
        alter_cache_row(&stack, attr::KEY_SET, bad.clone()).await;
        // Fetched "later" than the instance's own fetch could be, so a
        // valid set from the provider must still replace it.
        let before = asked(&idp);
        let (runtime, function) = by_discovery(&stack, &idp).await;
        let got = delete(&runtime, "t1", &bearer(&stack.keys.es256)).await;
        assert_eq!((got.status, got.body), (200, json!({})), "{bad:?}");
        assert!(stack.token_item("o", "t1").await.is_none(), "{bad:?}");
        assert_eq!(asked(&idp), before + 2, "{bad:?}: the provider was asked");
        let lines = function.stop().await.join("\n");
        assert!(lines.contains("shared key cache"), "{bad:?}: a log line says why: {lines}");
        let row = KeyCacheItem::from_item(&cache_rows(&stack).await[0]).unwrap();
        assert_eq!(row.entry.document, stack.keys.jwks(), "{bad:?}: the cache holds a good set again");
    }
}

/// The provider accepts connections and never answers, and the cache is
/// empty: a PAT request is still served (the key fetch is left behind it).
#[tokio::test(flavor = "multi_thread")]
async fn a_pat_cold_start_never_waits_for_the_provider() {
    let stack = account().await;
    let pat = stack.live_token("o", "o-login").await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            let _ = accepted_tx.send(());
            open.push(socket);
        }
    });
    let endpoint = format!("http://{address}{WELL_KNOWN}");
    let (runtime, function) = cold_start(&stack, &[("AUTH_OIDC_CONFIG_ENDPOINT", endpoint)]).await;
    let got = delete(&runtime, "t1", &format!("Token {pat}")).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    assert!(stack.token_item("o", "t1").await.is_none());
    assert!(accepted.try_recv().is_ok(), "the key fetch had begun, and was not answered");
    function.stop().await;
    held.abort();
}
