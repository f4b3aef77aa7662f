//! The identity provider's keys, shared by every instance through the key
//! cache table: cold starts that find a fresh entry never ask the provider,
//! a rotated key reaches other instances through the cache, the newest set
//! always wins, an outage is ridden out within the stale limit, and a bad
//! or foreign entry is never trusted. Each instance is the real binary.

use std::time::{Duration, Instant};

use crate::common::idp::{Idp, Reply, Silent};
use crate::common::runtime_api::{function_binary, Function, RuntimeApi};
use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use netbird_delete_token::auth::provider_keys::{CachedKeySet, KeyLocation, SharedKeyCache};
use netbird_delete_token::config::KeyUrl;
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::devkeys::{jwks_json, DevKey};
use netbird_delete_token::storage::dynamo::DynamoStore;
use netbird_delete_token::storage::items::{attr, Item, KeyCacheItem};
use serde_json::{json, Value};

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
    cold_start_with_timeout(stack, settings, RuntimeApi::start().await).await
}

/// [`cold_start`], bound to `runtime`.
async fn cold_start_with_timeout(
    stack: &Stack,
    settings: &[(&'static str, String)],
    runtime: RuntimeApi,
) -> (RuntimeApi, Function) {
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

/// Sets `attribute` of the (only) key cache row, or removes it (`None`).
async fn alter_cache_row(stack: &Stack, attribute: &str, value: impl Into<Option<AttributeValue>>) {
    let rows = cache_rows(stack).await;
    assert_eq!(rows.len(), 1, "one source, one row");
    let key = Item::from([(attr::SOURCE.to_owned(), rows[0][attr::SOURCE].clone())]);
    let table = stack.config.key_cache_table.as_deref().unwrap();
    let update =
        stack.client.update_item().table_name(table).set_key(Some(key)).expression_attribute_names("#a", attribute);
    match value.into() {
        Some(value) => update.update_expression("SET #a = :v").expression_attribute_values(":v", value),
        None => update.update_expression("REMOVE #a"),
    }
    .send()
    .await
    .unwrap();
}

/// Writes `row` into the key cache table as it is.
async fn put_cache_row(stack: &Stack, row: Item) {
    let table = stack.config.key_cache_table.as_deref().unwrap();
    stack.client.put_item().table_name(table).set_item(Some(row)).send().await.unwrap();
}

/// The JSON lines of a function's output.
fn documents(lines: &[String]) -> Vec<Value> {
    lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The account, its keys in the cache, and then a provider that answers
/// 503 to everything.
async fn seeded_then_down() -> (Stack, Idp) {
    let stack = account().await;
    let idp = provider(&stack.keys.jwks()).await;
    seed(&stack, &idp).await;
    let down = Reply { status: 503, headers: Vec::new(), body: "down".into() };
    idp.set(WELL_KNOWN, down.clone());
    idp.set("/certs", down);
    (stack, idp)
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
    let (stack, idp) = seeded_then_down().await;
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
    let silent = Silent::start().await;
    let (runtime, function) = cold_start(&stack, &[("AUTH_OIDC_CONFIG_ENDPOINT", silent.url(WELL_KNOWN))]).await;
    let got = delete(&runtime, "t1", &format!("Token {pat}")).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    assert!(stack.token_item("o", "t1").await.is_none());
    assert!(silent.accepted() > 0, "the key fetch had begun, and was not answered");
    function.stop().await;
}

/// The fleet's cache holds a fresh set; the provider accepts connections
/// and never answers; the function has 3 s. A JWT signed with a key not in
/// the set waits for the provider only until the request's deadline (2.5 s,
/// Lambda's less the answer margin): a 500 with a log line naming the
/// cause, never the last resort 0.1 s before Lambda's deadline. With an
/// empty cache, the first request meets the refresh init began, and waits
/// for it no longer either.
#[tokio::test(flavor = "multi_thread")]
async fn a_jwt_whose_keys_cannot_be_had_in_time_is_a_500_by_its_deadline() {
    let stack = account().await;
    let silent = Silent::start().await;
    let endpoint = silent.url(WELL_KNOWN);
    let source =
        KeyLocation::Discovery { endpoint: KeyUrl::parse(&endpoint).unwrap(), issuer: ISSUER.into() }.cache_key();
    let rotated = DevKey::generate_es256("rotated").unwrap();
    for (cached, cause) in [(true, "no whole answer within"), (false, "already under way")] {
        let table = stack.config.key_cache_table.as_deref().unwrap();
        let key = Item::from([(attr::SOURCE.to_owned(), AttributeValue::S(source.clone()))]);
        stack.client.delete_item().table_name(table).set_key(Some(key)).send().await.unwrap();
        if cached {
            let entry = CachedKeySet { document: stack.keys.jwks(), fetched_at_ms: now_ms(), max_age_secs: 3600 };
            put_cache_row(&stack, KeyCacheItem { source: source.clone(), entry }.to_item()).await;
        }
        let runtime = RuntimeApi::with_timeout(Duration::from_secs(3)).await;
        let settings = [("AUTH_OIDC_CONFIG_ENDPOINT", endpoint.clone())];
        let (runtime, function) = cold_start_with_timeout(&stack, &settings, runtime).await;
        let started = Instant::now();
        let got = delete(&runtime, "t1", &bearer(&rotated)).await;
        let took = started.elapsed();
        assert_eq!((got.status, got.body), error(500, "internal server error"), "cached: {cached}");
        assert!(stack.token_item("o", "t1").await.is_some());
        let lines = function.stop().await;
        assert!(took < Duration::from_millis(2_900), "cached: {cached}: answered after {took:?}");
        assert!(!lines.iter().any(|l| l.contains("no answer before the Lambda deadline")), "{lines:#?}");
        let docs = documents(&lines);
        let request = docs.iter().find(|d| d["message"] == "request").expect("a request line");
        assert_eq!((request["outcome"].as_str(), request["cause"].as_str()), (Some("internal_error"), Some("keys")));
        let logged = docs.iter().any(|d| {
            d["message"] == "a JWT could not be verified" && d["error"].as_str().is_some_and(|e| e.contains(cause))
        });
        assert!(logged, "cached: {cached}: a log line names the cause: {lines:#?}");
    }
}

/// Entries a careless writer (or a clock gone wrong) left: the function
/// ignores each, and the next fetch from the provider replaces it, so the
/// fleet's next cold start asks the provider nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_entry_of_the_wrong_shape_or_from_the_future_is_replaced_by_the_next_fetch() {
    let far_future = (now_ms() + 86_400_000).to_string();
    let poisons: [(&str, Option<AttributeValue>); 4] = [
        ("fetchedAt missing", None),
        ("fetchedAt not a number", Some(AttributeValue::S("yesterday".into()))),
        ("fetchedAt a day ahead", Some(AttributeValue::N(far_future))),
        ("maxAge missing", None),
    ];
    for (what, poison) in poisons {
        let stack = account().await;
        let idp = provider(&stack.keys.jwks()).await;
        seed(&stack, &idp).await;
        let attribute = if what.starts_with("maxAge") { attr::MAX_AGE } else { attr::FETCHED_AT };
        alter_cache_row(&stack, attribute, poison).await;
        let before = asked(&idp);
        let (runtime, function) = by_discovery(&stack, &idp).await;
        assert_eq!(delete(&runtime, "t1", &bearer(&stack.keys.es256)).await.status, 200, "{what}");
        function.stop().await;
        assert_eq!(asked(&idp), before + 2, "{what}: the provider was asked");
        let row = KeyCacheItem::from_item(&cache_rows(&stack).await[0]).expect("a usable entry again");
        assert!(row.entry.fetched_at_ms <= now_ms(), "{what}: replaced by the fetch");
        let (runtime, function) = by_discovery(&stack, &idp).await;
        assert_eq!(delete(&runtime, "t2", &bearer(&stack.keys.es256)).await.status, 200, "{what}");
        function.stop().await;
        assert_eq!(asked(&idp), before + 2, "{what}: the next cold start found the cache fresh");
        assert!(stack.token_item("o", "t1").await.is_none() && stack.token_item("o", "t2").await.is_none());
    }
}

/// The cache write's condition, on DynamoDB: an entry of the wrong shape
/// or from the future is replaced; a newer believable one never is.
#[tokio::test(flavor = "multi_thread")]
async fn the_cache_write_replaces_exactly_what_it_must() {
    let stack = Stack::new().await;
    let store = DynamoStore::new(stack.client.clone(), &stack.config);
    let now = now_ms();
    let fresh = CachedKeySet { document: "fresh".into(), fetched_at_ms: now, max_age_secs: 60 };
    let good = |fetched_at_ms: u64| {
        let entry = CachedKeySet { document: "held".into(), fetched_at_ms, max_age_secs: 60 };
        KeyCacheItem { source: "src".into(), entry }.to_item()
    };
    let with = |name: &str, value: Option<AttributeValue>| {
        let mut row = good(now + 10_000);
        match value {
            Some(value) => row.insert(name.to_owned(), value),
            None => row.remove(name),
        };
        row
    };
    let replaced = [
        ("fetchedAt missing", with(attr::FETCHED_AT, None)),
        ("fetchedAt a string", with(attr::FETCHED_AT, Some(AttributeValue::S("1".into())))),
        ("fetchedAt over a minute ahead", good(now + 61_000)),
        ("keySet a number", with(attr::KEY_SET, Some(AttributeValue::N("1".into())))),
        ("maxAge missing", with(attr::MAX_AGE, None)),
        ("older", good(now - 1)),
    ];
    for (what, row) in replaced {
        put_cache_row(&stack, row).await;
        assert_eq!(store.store("src", &fresh, &Deadline::Unknown).await, Ok(true), "{what}");
        assert_eq!(store.load("src", &Deadline::Unknown).await, Ok(Some(fresh.clone())), "{what}");
    }
    put_cache_row(&stack, good(now + 60_000)).await;
    assert_eq!(store.store("src", &fresh, &Deadline::Unknown).await, Ok(false), "a newer, believable set stays");
    assert_eq!(store.load("src", &Deadline::Unknown).await.unwrap().unwrap().document, "held");
}

/// The provider fails for hours: the key set past its lifetime keeps
/// serving, and each failed refresh says how far past (`KeysStale`, the
/// stale-keys alarm's metric), long before JWTs fail at 24 h.
#[tokio::test(flavor = "multi_thread")]
async fn a_provider_failing_for_hours_is_reported_long_before_the_cliff() {
    let (stack, idp) = seeded_then_down().await;
    // Fetched 6 h ago with a max-age of 1 h: 5 h past its lifetime.
    let fetched_at = now_ms() - 6 * 3_600_000;
    alter_cache_row(&stack, attr::FETCHED_AT, AttributeValue::N(fetched_at.to_string())).await;
    let (runtime, function) = by_discovery(&stack, &idp).await;
    assert_eq!(delete(&runtime, "t1", &bearer(&stack.keys.es256)).await.status, 200, "the stale set serves");
    let started = Instant::now();
    let failure = loop {
        let lines = function.output.lock().unwrap().clone();
        if let Some(doc) = documents(&lines).into_iter().find(|d| d["KeyRefreshFailures"] == 1) {
            break doc;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no failed refresh was reported: {lines:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    function.stop().await;
    let stale = failure["KeysStale"].as_u64().unwrap();
    assert!((5 * 3600..5 * 3600 + 60).contains(&stale), "{failure}");
    assert_eq!(
        (failure["level"].as_str(), failure["message"].as_str()),
        (Some("WARN"), Some("refreshing the identity provider's keys failed"))
    );
    let declared: Vec<&str> = failure["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert_eq!(declared, ["KeyRefreshFailures", "KeysStale"]);
    assert!(failure["error"].as_str().unwrap().contains("503"), "{failure}");
}
