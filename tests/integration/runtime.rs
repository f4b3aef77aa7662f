//! The `delete-token` binary itself, driven through a local Lambda Runtime
//! API as Lambda drives it (frozen between invocations where the test says
//! so), its output read as CloudWatch stores it: init, records and metrics
//! on the function's own series, refusals named, nothing secret, the key
//! refresh within Lambda's lifecycle, the deadline.

use std::time::{Duration, Instant};

use crate::common::faults::{rounds, FaultProxy};
use crate::common::idp::{Idp, Reply};
use crate::common::runtime_api::{function_binary, Function, RuntimeApi};
use crate::common::*;
use netbird_delete_token::auth::provider::cache::CachedKeySet;
use netbird_delete_token::auth::provider::discovery::KeyLocation;
use netbird_delete_token::config::KeyUrl;
use netbird_delete_token::devkeys::DevKey;
use serde_json::{json, Value};

const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Settings changed for one function: a `None` value removes one.
type Changes = Vec<(&'static str, Option<String>)>;

/// The function's settings for `stack` with `changes`.
fn env_with(stack: &Stack, changes: &[(&'static str, Option<String>)]) -> Vec<(&'static str, String)> {
    let mut env = stack.function_env(&stack.dynamodb);
    for (name, value) in changes {
        env.retain(|(k, _)| k != name);
        env.extend(value.clone().map(|v| (*name, v)));
    }
    env
}

/// A function process of `stack` with `changes` to its settings, past its
/// init; `frozen` between invocations as Lambda freezes it, from its first
/// poll on.
async fn start(
    stack: &Stack,
    runtime: RuntimeApi,
    changes: &[(&'static str, Option<String>)],
) -> (RuntimeApi, Function) {
    launch(stack, runtime, changes, false).await
}

async fn launch(
    stack: &Stack,
    runtime: RuntimeApi,
    changes: &[(&'static str, Option<String>)],
    frozen: bool,
) -> (RuntimeApi, Function) {
    let function = Function::spawn(function_binary(), &runtime, &env_with(stack, changes));
    if frozen {
        runtime.freeze_between_invocations(&function);
    }
    runtime.wait_first_poll(Duration::from_secs(20)).await.expect("the function finished init");
    (runtime, function)
}

/// The fleet's cache key of discovery at `endpoint`.
fn discovery(endpoint: &str) -> String {
    KeyLocation::Discovery { endpoint: KeyUrl::parse(endpoint).unwrap(), issuer: ISSUER.into() }.cache_key()
}

async fn delete(runtime: &RuntimeApi, user: &str, token: &str, authorization: &str) -> Answer {
    http_answer(runtime.invoke(&http_api_event("DELETE", user, token, Some(authorization))).await)
}

/// The output's JSON lines.
fn documents(lines: &[String]) -> Vec<Value> {
    lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn requests(docs: &[Value]) -> Vec<&Value> {
    docs.iter().filter(|d| d["message"] == "request").collect()
}

/// Records that report the provider's keys as failing or stale.
fn key_health(docs: &[Value]) -> Vec<&Value> {
    docs.iter().filter(|d| d.get("KeyRefreshFailures").is_some() || d.get("KeysStale").is_some()).collect()
}

/// Init opens both connections at once; each answer has one request line
/// that is its EMF document on the function's own series (two functions,
/// two series), one audit line per delete, and no credential anywhere.
#[tokio::test(flavor = "multi_thread")]
async fn serves_logs_and_counts_on_each_functions_own_series() {
    let proxy = FaultProxy::start(&endpoint()).await;
    proxy.set_latency(Duration::from_millis(30)); // concurrent calls then overlap for certain
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.service_user("s", ACCOUNT, "ci-bot").await;
    let pat = stack.live_token("o", "o-login").await;
    stack.live_token("s", "s-t").await;
    let jwt = stack.keys.jwt("o");
    let name = |n: &str| {
        vec![("AWS_ENDPOINT_URL_DYNAMODB", Some(proxy.endpoint.clone())), ("AWS_LAMBDA_FUNCTION_NAME", Some(n.into()))]
    };
    let (staging, first) = start(&stack, RuntimeApi::start().await, &name("staging-delete-token")).await;
    let seen = proxy.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|c| c.operation.as_str()).collect::<Vec<_>>(), ["GetItem", "GetItem"], "{seen:?}");
    assert_eq!(rounds(&seen), 1, "the warm-up's two reads at once");

    assert_eq!(delete(&staging, "s", "s-t", &format!("Token {pat}")).await.status, 200);
    let refused = delete(&staging, "s", "nope", &format!("Bearer {jwt}")).await;
    assert_eq!((refused.status, refused.body), error(404, "pat: nope not found"));
    assert_eq!(http_answer(staging.invoke(&json!({ "not": "an http event" })).await).status, 400);
    assert!(stack.token_item("s", "s-t").await.is_none() && stack.token_item("o", "o-login").await.is_some());
    let (production, second) = start(&stack, RuntimeApi::start().await, &name("production-delete-token")).await;
    assert_eq!(delete(&production, "s", "nope", &format!("Bearer {jwt}")).await.status, 404);

    let (staging, production) = (first.stop().await, second.stop().await);
    let docs = documents(&staging);
    assert_eq!(docs.len(), staging.len(), "every line is JSON: {staging:#?}");
    let lines = requests(&docs);
    let outcomes: Vec<(&str, u64)> =
        lines.iter().map(|d| (d["outcome"].as_str().unwrap(), d["status"].as_u64().unwrap())).collect();
    assert_eq!(outcomes, [("deleted", 200), ("token_not_found", 404), ("bad_request", 400)]);
    for (series, docs) in [("staging-delete-token", docs.clone()), ("production-delete-token", documents(&production))]
    {
        let metrics: Vec<&Value> = docs.iter().filter(|d| d.get("_aws").is_some()).collect();
        assert!(!metrics.is_empty());
        for doc in metrics {
            assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["FunctionName"]]));
            assert_eq!(doc["FunctionName"], series, "each function writes its own series");
        }
    }
    let audit: Vec<&Value> = docs.iter().filter(|d| d["activity"] == 42).collect();
    assert_eq!(audit.len(), 1);
    let fields =
        ["activity_code", "initiator_id", "target_id", "account_id", "token_id", "meta.name", "meta.user_name"];
    let got: Vec<&str> = fields.iter().map(|f| audit[0][*f].as_str().unwrap()).collect();
    assert_eq!(got, ["personal.access.token.delete", "o", "s", ACCOUNT, "s-t", "name of s-t", "ci-bot"]);
    let everything = staging.join("\n");
    let hash = netbird_delete_token::auth::pat::hash_token(&pat);
    for secret in [pat.as_str(), &pat[4..34], hash.as_str(), jwt.as_str(), jwt.rsplit('.').next().unwrap()] {
        assert!(!everything.contains(secret), "a credential reached the output");
    }
}

/// Every way init can stop (docs/spec.md §6) stops it with a line naming
/// the setting, before the function asks for work.
#[tokio::test(flavor = "multi_thread")]
async fn every_way_init_can_stop_names_its_setting() {
    let stack = Stack::new().await;
    let set = |name: &'static str, value: &str| (name, Some(value.to_owned()));
    let cases: Vec<(Changes, &str)> = vec![
        (vec![("AUTH_ISSUER", None)], "AUTH_ISSUER is required"),
        (vec![("AUTH_JWKS", None)], "AUTH_JWKS, AUTH_KEYS_LOCATION or AUTH_OIDC_CONFIG_ENDPOINT is required"),
        (
            vec![("AUTH_JWKS", None), set("AUTH_KEYS_LOCATION", "http://idp.example/keys")],
            "AUTH_KEYS_LOCATION must be an https:// URL",
        ),
        (vec![set("AUTH_AUDIENCE", " , ")], "AUTH_AUDIENCE lists no audience"),
        (vec![set("NB_API_RATE_LIMITING_RPM", "0")], "NB_API_RATE_LIMITING_RPM must be a positive whole number"),
        (vec![set("NB_API_RATE_LIMITING_ENABLED", "yes")], "NB_API_RATE_LIMITING_ENABLED must be true or false"),
        (vec![set("AUTH_JWT_ALLOW_GROUPS", "ops")], "AUTH_JWT_ALLOW_GROUPS needs AUTH_JWT_GROUPS_CLAIM"),
        (
            vec![set("AUTH_JWT_GROUPS_CLAIM", "groups"), set("AUTH_JWT_ALLOW_GROUPS", " , ")],
            "AUTH_JWT_ALLOW_GROUPS is set but names no group",
        ),
        (vec![set("AUTH_JWKS", r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#)], "AUTH_JWKS is not a usable key set"),
        (
            vec![set("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb.example")],
            "AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL",
        ),
        (
            vec![("AWS_ENDPOINT_URL_DYNAMODB", None), set("AWS_ENDPOINT_URL", "http://10.0.0.1:8000")],
            "endpoint \\\"http://10.0.0.1:8000\\\" (AWS_ENDPOINT_URL_DYNAMODB",
        ),
    ];
    for (changes, named) in cases {
        let runtime = RuntimeApi::start().await;
        let mut function = Function::spawn(function_binary(), &runtime, &env_with(&stack, &changes));
        assert_eq!(function.exit_code(Duration::from_secs(20)).await, Some(1), "{changes:?}");
        assert!(runtime.wait_first_poll(Duration::from_millis(10)).await.is_none(), "it never asked for work");
        let lines = function.stop().await.join("\n");
        assert!(lines.contains("invalid configuration") && lines.contains(named), "{changes:?}: {lines}");
        assert!(!lines.contains("c2VjcmV0"), "no key material in the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_down_at_init_is_not_fatal() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let stack = Stack::new().await;
    let (runtime, function) =
        start(&stack, RuntimeApi::start().await, &[("AWS_ENDPOINT_URL_DYNAMODB", Some(dead))]).await;
    let got = delete(&runtime, "o", "t", &format!("Bearer {}", stack.keys.jwt("o"))).await;
    assert_eq!((got.status, got.body), error(500, "internal server error"));
    let lines = function.stop().await;
    assert!(lines.iter().any(|l| l.contains("warm-up failed")), "{lines:#?}");
}

/// Each refused credential's request line names its reason, with the
/// credential's values a setting must match, while the caller gets the
/// generic answer; a hostile claim leaves one bounded line and forges
/// nothing; no credential reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn each_refused_credential_is_named_in_the_log_and_nothing_else() {
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let expired = stack.token("o", "o-old", ACCOUNT, Some(now() - 10)).await;
    let (runtime, function) = start(&stack, RuntimeApi::start().await, &[]).await;
    let sign = |changes: Value| {
        let mut claims = claims("o");
        claims.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
        format!("Bearer {}", stack.keys.es256.sign(&claims).unwrap())
    };
    let forged = format!("x\n{{\"message\":\"request\",\"outcome\":\"deleted\"}}{}", "y".repeat(5_000));
    let foreign = DevKey::generate_es256("es-key").unwrap(); // our kid, another key
    let cases = [
        (sign(json!({ "aud": "netbird-dashboard" })), "jwt_wrong_audience", json!({ "aud": ["netbird-dashboard"] })),
        (sign(json!({ "iss": "https://idp.test" })), "jwt_wrong_issuer", json!({ "iss": "https://idp.test" })),
        (sign(json!({ "exp": now() - 3600 })), "jwt_expired", json!({ "expired_seconds_ago": 3600 })),
        (
            format!("Bearer {}", DevKey::generate_es256("rotated").unwrap().sign(&claims("o")).unwrap()),
            "jwt_unknown_kid",
            json!({ "kid": "rotated" }),
        ),
        (
            format!("Bearer {}", foreign.sign(&claims("o")).unwrap()),
            "jwt_bad_signature",
            json!({ "kid": "es-key", "alg": "ES256" }),
        ),
        (sign(json!({ "iss": forged })), "jwt_wrong_issuer", json!({})),
        ("Basic dXNlcjpw".to_owned(), "unknown_scheme", json!({})),
    ];
    for (authorization, _, _) in &cases {
        let got = delete(&runtime, "o", "t", authorization).await;
        let message =
            if authorization.starts_with("Basic") { "no valid authentication provided" } else { "token invalid" };
        assert_eq!((got.status, got.body), error(401, message), "the caller learns nothing more");
    }
    assert_eq!(delete(&runtime, "o", "t", &format!("Token {expired}")).await.status, 401);
    assert_eq!(stack.token_item("o", "o-old").await.unwrap().last_used, None, "an expired PAT is not marked used");
    let lines = function.stop().await;
    let docs = documents(&lines);
    assert_eq!(docs.len(), lines.len(), "one JSON object a line: {lines:#?}");
    let lines_of_requests = requests(&docs);
    assert_eq!(lines_of_requests.len(), cases.len() + 1, "nothing forged a request line");
    for ((_, reason, shown), line) in cases.iter().zip(&lines_of_requests) {
        assert_eq!(line["reason"], *reason, "{line}");
        for (name, want) in shown.as_object().unwrap() {
            let got = &line["credential"][name];
            let near = want.as_u64().zip(got.as_u64()).is_some_and(|(w, g)| g.abs_diff(w) < 60);
            assert!(got == want || near, "{reason}: {name} is {got}, not {want}");
        }
    }
    let hostile = serde_json::to_string(lines_of_requests[5]).unwrap();
    assert!(hostile.len() < 1_500, "a bounded line: {} bytes", hostile.len());
    let pat = (lines_of_requests[7]["reason"].as_str(), lines_of_requests[7]["credential"]["token_id"].as_str());
    assert_eq!(pat, (Some("pat_expired"), Some("o-old")));
    let everything = lines.join("\n");
    for (authorization, _, _) in &cases[..5] {
        assert!(!everything.contains(authorization.rsplit('.').next().unwrap()), "no signature in the log");
    }
    assert!(!everything.contains(&expired) && !everything.contains(&expired[4..34]), "no PAT in the log");
}

/// Lambda freezes the process once it asks for its next event. Keys past
/// their lifetime are refreshed within the request that finds them, from
/// the provider by the first instance and from the fleet's cache by the
/// next; a fetch init began and a freeze cut off is no failure; a kid no
/// set holds is still a 401. A healthy provider raises no key-health record.
#[tokio::test(flavor = "multi_thread")]
async fn frozen_between_invocations_a_healthy_provider_raises_no_alarm() {
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    for i in 0..6 {
        stack.live_token("o", &format!("t{i}")).await;
    }
    let provider = || async {
        let idp = Idp::start().await;
        idp.set(WELL_KNOWN, Reply::json(json!({ "issuer": ISSUER, "jwks_uri": idp.url("/certs") }).to_string()));
        idp.set("/certs", Reply::json(stack.keys.jwks()).with_header("cache-control", "max-age=30"));
        idp.set_latency(Duration::from_millis(50));
        idp
    };
    let (empty, expiring) = (provider().await, provider().await);
    // The fetch init begins from `empty` waits for its answer past the
    // freeze, and past its own timeout: the freeze cuts it.
    empty.set_latency(Duration::from_secs(5));
    // The fleet's entry for `expiring` leaves its lifetime 3 s from now.
    let endpoint = expiring.url(WELL_KNOWN);
    let entry = CachedKeySet { document: stack.keys.jwks(), fetched_at_ms: now_ms() - 27_000, max_age_secs: 30 };
    stack.cache_keys(discovery(&endpoint), entry).await;

    let frozen = |endpoint: String| async {
        let settings = [("AUTH_JWKS", None), ("AUTH_OIDC_CONFIG_ENDPOINT", Some(endpoint))];
        launch(&stack, RuntimeApi::start().await, &settings, true).await
    };
    let (cut, cut_function) = frozen(empty.url(WELL_KNOWN)).await;
    empty.set_latency(Duration::from_millis(50)); // healthy again for the request's own fetch
    let (first, first_function) = frozen(endpoint.clone()).await;
    let (second, second_function) = frozen(endpoint).await;
    assert_eq!(expiring.hits("/certs"), 0, "the entry was fresh at init");
    // Frozen past the fetch's own timeout (3 s) and past the entry's lifetime.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let jwt = format!("Bearer {}", stack.keys.es256.sign(&claims("o")).unwrap());
    for (runtime, token) in [(&cut, "t0"), (&first, "t1"), (&second, "t2")] {
        let got = delete(runtime, "o", token, &jwt).await;
        assert_eq!((got.status, got.body), (200, json!({})), "{token}");
        assert!(stack.token_item("o", token).await.is_none());
    }
    assert_eq!(
        (expiring.hits(WELL_KNOWN), expiring.hits("/certs")),
        (1, 1),
        "the first instance fetched, the second read the cache"
    );
    let stranger = format!("Bearer {}", DevKey::generate_es256("stranger").unwrap().sign(&claims("o")).unwrap());
    assert_eq!(delete(&second, "o", "t3", &stranger).await.status, 401);
    assert!(stack.token_item("o", "t3").await.is_some());
    for function in [cut_function, first_function, second_function] {
        let docs = documents(&function.stop().await);
        assert!(!requests(&docs).is_empty(), "the log was read");
        assert_eq!(key_health(&docs), Vec::<&Value>::new(), "no failure, nothing stale");
    }
}

/// A provider slower than the refresh's slice: the keys past their
/// lifetime verify, the answer does not wait for the provider, and the
/// staleness is reported (no failure: the provider may be healthy). A
/// provider that fails is reported with how far past their lifetime the
/// keys are, long before JWTs fail at 24 h.
#[tokio::test(flavor = "multi_thread")]
async fn keys_that_cannot_be_refreshed_are_reported_as_stale() {
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let jwt = format!("Bearer {}", stack.keys.es256.sign(&claims("o")).unwrap());
    // Slow, the request's own fetch cut (the entry fresh at init, past its
    // lifetime by the request); slow, the wait for init's fetch cut;
    // failing, 5 h and 25 h past the lifetime.
    let cases = [(true, 0, 200), (true, 300, 200), (false, 5 * 3600, 200), (false, 25 * 3600, 500)];
    for (i, (slow, past_lifetime, status)) in cases.into_iter().enumerate() {
        let idp = Idp::start().await;
        idp.set(WELL_KNOWN, Reply::json(json!({ "issuer": ISSUER, "jwks_uri": idp.url("/certs") }).to_string()));
        if slow {
            idp.set("/certs", Reply::json(stack.keys.jwks()));
            idp.set_latency(Duration::from_millis(2_000));
        } else {
            idp.set("/certs", Reply { status: 503, headers: Vec::new(), body: "down".into() });
        }
        // By discovery, and (the cache's other kind of key) by the key set's URL.
        let (setting, url, source) = if slow {
            ("AUTH_OIDC_CONFIG_ENDPOINT", idp.url(WELL_KNOWN), discovery(&idp.url(WELL_KNOWN)))
        } else {
            let url = idp.url("/certs");
            ("AUTH_KEYS_LOCATION", url.clone(), KeyLocation::Jwks(KeyUrl::parse(&url).unwrap()).cache_key())
        };
        // Fresh at init for one more second when it is due to pass its lifetime by the request.
        let fetched_at_ms = now_ms() + if past_lifetime == 0 { 1_000 } else { 0 } - (3600 + past_lifetime) * 1000;
        stack.cache_keys(source, CachedKeySet { document: stack.keys.jwks(), fetched_at_ms, max_age_secs: 3600 }).await;
        stack.live_token("o", &format!("k{i}")).await;
        let (runtime, function) =
            start(&stack, RuntimeApi::start().await, &[("AUTH_JWKS", None), (setting, Some(url))]).await;
        if past_lifetime == 0 {
            assert_eq!(idp.hits(WELL_KNOWN), 0, "fresh at init: no fetch began");
            let stale_at = fetched_at_ms + 3_600_000 + 200;
            tokio::time::sleep(Duration::from_millis(stale_at.saturating_sub(now_ms()))).await;
        }
        let started = Instant::now();
        let answer = delete(&runtime, "o", &format!("k{i}"), &jwt).await.status;
        assert_eq!(answer, status, "the stale set verifies, for 24 h past its lifetime");
        assert_eq!(stack.token_item("o", &format!("k{i}")).await.is_none(), status == 200);
        assert!(started.elapsed() < Duration::from_millis(1_800), "within the slice: {:?}", started.elapsed());
        assert!(idp.hits(WELL_KNOWN) + idp.hits("/certs") > 0, "the provider was asked");
        let docs = documents(&function.stop().await);
        let health = key_health(&docs);
        assert_eq!(health.len(), 1, "{health:#?}");
        let stale = health[0]["KeysStale"].as_u64().unwrap();
        assert!((past_lifetime..past_lifetime + 60).contains(&stale), "{}", health[0]);
        assert_eq!(health[0].get("KeyRefreshFailures").is_some(), !slow, "{}", health[0]);
        assert_eq!(health[0]["level"], "WARN");
        assert_eq!(health[0]["FunctionName"], "delete-token");
    }
}

/// The provider never answers and the fleet's cache is empty: a PAT is
/// served all the same (init never waits for the provider).
#[tokio::test(flavor = "multi_thread")]
async fn a_pat_cold_start_never_waits_for_the_provider() {
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.live_token("o", "o-t").await;
    let pat = stack.live_token("o", "o-login").await;
    let silent = Idp::silent().await;
    let (runtime, function) = start(
        &stack,
        RuntimeApi::start().await,
        &[("AUTH_JWKS", None), ("AUTH_OIDC_CONFIG_ENDPOINT", Some(silent.url(WELL_KNOWN)))],
    )
    .await;
    assert_eq!(delete(&runtime, "o", "o-t", &format!("Token {pat}")).await.status, 200);
    assert!(stack.token_item("o", "o-t").await.is_none());
    assert!(silent.hits(WELL_KNOWN) > 0, "the key fetch had begun, and was not answered");
    function.stop().await;
}

/// Asked for every log level there is, the function still logs no
/// credential, no token hash and no AWS secret.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_log_at_trace_level() {
    const SECRET_KEY: &str = "secretKEYneverLOGGEDx0x0x0x0x0x0x0x0x0x0";
    const SESSION_TOKEN: &str = "sessionTOKENneverLOGGEDy1y1y1y1y1y1y1y1y1";
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = stack.live_token("o", "o-login").await;
    let jwt = stack.keys.jwt("o");
    for (i, asked) in [("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("RUST_LOG", "trace,aws_smithy_runtime=trace,hyper=trace")]
        .into_iter()
        .enumerate()
    {
        stack.live_token("o", &format!("o-{i}")).await;
        let secrets = [
            (asked.0, Some(asked.1.to_owned())),
            ("AWS_SECRET_ACCESS_KEY", Some(SECRET_KEY.into())),
            ("AWS_SESSION_TOKEN", Some(SESSION_TOKEN.into())),
        ];
        let (runtime, function) = start(&stack, RuntimeApi::start().await, &secrets).await;
        assert_eq!(delete(&runtime, "o", &format!("o-{i}"), &format!("Token {pat}")).await.status, 200);
        assert!(stack.token_item("o", &format!("o-{i}")).await.is_none());
        assert_eq!(delete(&runtime, "o", "gone", &format!("Bearer {jwt}")).await.status, 404);
        let everything = function.stop().await.join("\n");
        assert!(everything.contains("\"outcome\":\"deleted\""), "the log was read: {everything}");
        let hash = netbird_delete_token::auth::pat::hash_token(&pat);
        let signature = jwt.rsplit('.').next().unwrap();
        for secret in [pat.as_str(), &pat[4..34], &hash, &jwt, signature, SECRET_KEY, SESSION_TOKEN] {
            assert!(!everything.contains(secret), "a secret reached the log with {asked:?}");
        }
    }
}

/// Lambda's filter of application logs, as documented: with the JSON log
/// format, a line below `level` is dropped, and a line that is not a JSON
/// object with a valid `level` and an RFC 3339 `timestamp` counts as INFO;
/// with the text format nothing is dropped.
fn kept_by_lambda(lines: &[String], json: bool, level: &str) -> Vec<Value> {
    const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rank = |name: &str| LEVELS.iter().position(|l| l.eq_ignore_ascii_case(name));
    let threshold = if json { rank(level).unwrap() } else { 0 };
    let rfc3339 = |text: &str| {
        text.len() >= 20 && text.as_bytes()[10] == b'T' && (text.ends_with('Z') || text[19..].contains(['+', '-']))
    };
    lines
        .iter()
        .filter_map(|line| {
            let doc: Option<Value> = serde_json::from_str(line).ok().filter(Value::is_object);
            let stamped = doc.as_ref().is_some_and(|d| d["timestamp"].as_str().is_some_and(rfc3339));
            let line_level = doc.as_ref().and_then(|d| d["level"].as_str()).and_then(rank).filter(|_| stamped);
            (line_level.unwrap_or(2) >= threshold).then(|| doc.unwrap_or_else(|| Value::String(line.clone())))
        })
        .collect()
}

/// The audit trail and the metrics the alarms read reach CloudWatch
/// whatever log level and format an operator sets, through Lambda's
/// controls or `RUST_LOG`: the lines are checked as Lambda filters them.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_and_the_metrics_survive_every_log_setting() {
    let mut settings: Vec<(bool, Vec<(&'static str, &str)>)> = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
        .into_iter()
        .map(|level| (true, vec![("AWS_LAMBDA_LOG_LEVEL", level)]))
        .collect();
    settings.extend([
        (true, vec![("RUST_LOG", "error")]),
        (false, vec![]),
        (false, vec![("RUST_LOG", "off")]),
        (false, vec![("AWS_LAMBDA_LOG_LEVEL", "FATAL")]),
    ]);
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = stack.live_token("o", "o-login").await;
    for (i, (json, asked)) in settings.into_iter().enumerate() {
        let token_id = format!("t-{i}");
        stack.live_token("o", &token_id).await;
        let mut changes: Vec<(&'static str, Option<String>)> =
            asked.iter().map(|(k, v)| (*k, Some(v.to_string()))).collect();
        changes.push(("AWS_LAMBDA_LOG_FORMAT", Some(if json { "JSON" } else { "Text" }.into())));
        let (runtime, function) = start(&stack, RuntimeApi::start().await, &changes).await;
        assert_eq!(delete(&runtime, "o", &token_id, &format!("Token {pat}")).await.status, 200, "{json} {asked:?}");
        assert!(stack.token_item("o", &token_id).await.is_none());
        let lines = function.stop().await;
        let level = asked.iter().find(|(k, _)| *k == "AWS_LAMBDA_LOG_LEVEL").map_or("INFO", |(_, v)| v);
        let kept = kept_by_lambda(&lines, json, level);
        let audit: Vec<&Value> = kept.iter().filter(|d| d["activity"] == 42).collect();
        assert_eq!(audit.len(), 1, "the audit line, {json} {asked:?}: {lines:#?}");
        assert_eq!(
            (audit[0]["result"].as_str(), audit[0]["token_id"].as_str()),
            (Some("deleted"), Some(token_id.as_str()))
        );
        let request =
            kept.iter().find(|d| d["message"] == "request").unwrap_or_else(|| panic!("{asked:?}: {lines:#?}"));
        assert_eq!((request["Deleted"].as_u64(), request["InternalErrors"].as_u64()), (Some(1), Some(0)));
    }
}

/// A 3 s function whose DynamoDB answers each call in 0.9 s. On the PAT
/// path (two rounds of reads) the delete starts with 0.7 s left: the time
/// left, from the Runtime API's deadline header, bounds it; the SDK gives
/// up, DynamoDB still applies it: 500, and the audit line says the outcome
/// is unknown. On the JWT path (one round) the delete fits.
#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_bounds_a_sent_delete_and_never_hides_it() {
    let proxy = FaultProxy::start(&endpoint()).await;
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = stack.live_token("o", "o-login").await;
    stack.live_token("o", "o-by-pat").await;
    stack.live_token("o", "o-by-jwt").await;
    let runtime = RuntimeApi::with_timeout(Duration::from_secs(3)).await;
    let (runtime, function) =
        start(&stack, runtime, &[("AWS_ENDPOINT_URL_DYNAMODB", Some(proxy.endpoint.clone()))]).await;
    proxy.set_latency(Duration::from_millis(900));
    let by_pat = delete(&runtime, "o", "o-by-pat", &format!("Token {pat}")).await;
    assert_eq!((by_pat.status, by_pat.body), error(500, "internal server error"));
    let by_jwt = delete(&runtime, "o", "o-by-jwt", &format!("Bearer {}", stack.keys.jwt("o"))).await;
    assert_eq!((by_jwt.status, by_jwt.body), (200, json!({})));
    let started = Instant::now();
    while stack.token_item("o", "o-by-pat").await.is_some() {
        assert!(started.elapsed() < Duration::from_secs(3), "DynamoDB applied the delete the function gave up on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stack.token_item("o", "o-login").await.is_some());
    let docs = documents(&function.stop().await);
    let results: Vec<(&str, &str)> = docs
        .iter()
        .filter(|d| d["activity"] == 42)
        .map(|a| (a["token_id"].as_str().unwrap(), a["result"].as_str().unwrap()))
        .collect();
    assert_eq!(results, [("o-by-pat", "unknown"), ("o-by-jwt", "deleted")]);
}
