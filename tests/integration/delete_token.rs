//! The handler end to end against DynamoDB Local: status, body, and the
//! tokens table afterwards, for every row of the specification (docs/spec.md).

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;

fn pair(user: &str, token: &str) -> (String, String) {
    (user.to_owned(), token.to_owned())
}

/// owner `o`, admin `a`, network admin `n`, user `u`, service user `s`,
/// each with one token `<id>-t`; `x` is in another account.
async fn account() -> Stack {
    let stack = Stack::new().await;
    for (id, role) in [("o", "owner"), ("a", "admin"), ("n", "network_admin"), ("u", "user")] {
        stack.user(id, ACCOUNT, role).await;
        stack.live_token(id, &format!("{id}-t")).await;
    }
    stack.service_user("s", ACCOUNT, "ci-bot").await;
    stack.live_token("s", "s-t").await;
    stack.user("x", "acc-2", "owner").await;
    stack.token("x", "x-t", "acc-2", Some(now() + 86_400)).await;
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn owner_deletes_own_token_with_a_jwt() {
    let stack = account().await;
    stack.live_token("o", "o-2").await;
    let before = stack.tokens().await;
    let got = stack.delete("o", "o-2", Some(&format!("Bearer {}", stack.keys.jwt("o")))).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["x-request-id"], "req-test-1");
    let want: Vec<_> = before.into_iter().filter(|k| *k != pair("o", "o-2")).collect();
    assert_eq!(stack.tokens().await, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn pat_caller_deletes_own_token_and_its_use_is_recorded() {
    let stack = account().await;
    let pat = stack.live_token("n", "n-login").await;
    let got = stack.call(&rest_api_event("DELETE", "n", "n-t", Some(&format!("Token {pat}")))).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    assert_eq!(got.headers["content-type"], "application/json");
    assert!(stack.token_item("n", "n-t").await.is_none());
    let login = stack.token_item("n", "n-login").await.unwrap();
    let last_used = login.last_used.unwrap();
    assert!((now() - last_used).abs() < 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pat_may_delete_itself_without_being_recreated() {
    let stack = account().await;
    let pat = stack.live_token("o", "o-self").await;
    let got = stack.delete("o", "o-self", Some(&format!("Bearer {pat}"))).await;
    assert_eq!(got.status, 200);
    assert!(stack.token_item("o", "o-self").await.is_none());
    let again = stack.delete("o", "o-self", Some(&format!("Token {pat}"))).await;
    assert_eq!((again.status, again.body), error(401, "token invalid"));
}

#[tokio::test(flavor = "multi_thread")]
async fn function_url_paths_with_stage_and_encoded_ids() {
    let stack = Stack::new().await;
    let user = "google-oauth2|110539841234567890123";
    stack.user(user, ACCOUNT, "owner").await;
    stack.live_token(user, "tök en").await;
    stack.live_token(user, "keep").await;
    let auth = format!("Bearer {}", stack.keys.jwt(user));
    let path = format!("/prod/api/users/{}/tokens/{}", encode(user), encode("tök en"));
    let got = stack.call(&function_url_event("DELETE", &path, Some(&auth))).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    assert_eq!(stack.tokens().await, vec![pair(user, "keep")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_delete_service_users_tokens_only() {
    let stack = account().await;
    let before = stack.tokens().await;
    let admin = format!("Bearer {}", stack.keys.jwt("a"));
    let refused = stack.delete("o", "o-t", Some(&admin)).await;
    assert_eq!((refused.status, refused.body), error(403, "admin role required to perform this action"));
    let netadmin = format!("Bearer {}", stack.keys.jwt("n"));
    let refused = stack.delete("s", "s-t", Some(&netadmin)).await;
    assert_eq!((refused.status, refused.body), error(403, "admin role required to perform this action"));
    assert_eq!(stack.tokens().await, before);

    let got = stack.delete("s", "s-t", Some(&admin)).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    let want: Vec<_> = before.into_iter().filter(|k| *k != pair("s", "s-t")).collect();
    assert_eq!(stack.tokens().await, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_leaves_every_token_in_place() {
    let stack = account().await;
    stack.put_user("b", ACCOUNT, "owner", &[(attr::BLOCKED, AttributeValue::Bool(true))]).await;
    let pending = [(attr::BLOCKED, AttributeValue::Bool(true)), (attr::PENDING_APPROVAL, AttributeValue::Bool(true))];
    stack.put_user("p", ACCOUNT, "owner", &pending).await;
    stack.user("r", ACCOUNT, "auditor").await;
    stack.user("m", ACCOUNT, "mystery_role").await;
    for id in ["b", "p", "r", "m"] {
        stack.live_token(id, &format!("{id}-t")).await;
    }
    let before = stack.tokens().await;
    let jwt = |sub: &str| format!("Bearer {}", stack.keys.jwt(sub));
    let cases = [
        ("ghost", "o", "o-t", error(403, "failed to validate user permissions: user: ghost not found")),
        ("b", "b", "b-t", error(403, "failed to validate user permissions: user is blocked")),
        ("p", "p", "p-t", error(403, "failed to validate user permissions: user is pending approval")),
        ("u", "u", "u-t", error(403, "permission denied")),
        ("r", "r", "r-t", error(403, "permission denied")),
        ("m", "m", "m-t", error(403, "permission denied")),
        ("o", "nobody", "t", error(404, "user: nobody not found")),
        ("o", "x", "x-t", error(403, "permission denied")),
        ("o", "o", "missing", error(404, "pat: missing not found")),
        // The id exists, but under another user: simply not found.
        ("o", "o", "a-t", error(404, "pat: a-t not found")),
    ];
    for (caller, user, token, want) in cases {
        let got = stack.delete(user, token, Some(&jwt(caller))).await;
        assert_eq!((got.status, got.body), want, "{caller} deleting {user}/{token}");
        assert_eq!(got.headers["content-type"], "application/json");
    }
    assert_eq!(stack.tokens().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_failures() {
    let stack = account().await;
    let before = stack.tokens().await;
    let expired = stack.token("o", "o-old", ACCOUNT, Some(now() - 1)).await;
    let no_expiry = stack.token("o", "o-forever", ACCOUNT, None).await;
    let unknown = netbird_delete_token::auth::pat::generate().unwrap();
    let mut bad_checksum = stack.live_token("o", "o-pat").await;
    let last = if bad_checksum.ends_with('0') { "1" } else { "0" };
    bad_checksum.replace_range(39.., last);
    let no_auth = error(401, "no valid authentication provided");
    let invalid = error(401, "token invalid");
    let cases = [
        (None, no_auth.clone()),
        (Some(String::new()), no_auth.clone()),
        (Some("Basic bzpw".to_owned()), no_auth.clone()),
        (Some(format!("Token {expired}")), invalid.clone()),
        (Some(format!("Token {no_expiry}")), invalid.clone()),
        (Some(format!("Token {unknown}")), invalid.clone()),
        (Some(format!("Token {bad_checksum}")), invalid.clone()),
        (Some("Bearer not.a.jwt".to_owned()), invalid.clone()),
    ];
    for (auth, want) in cases {
        let got = stack.delete("o", "o-t", auth.as_deref()).await;
        assert_eq!((got.status, got.body), want, "{auth:?}");
    }
    let mut after = stack.tokens().await;
    after.retain(|k| !["o-old", "o-forever", "o-pat"].contains(&k.1.as_str()));
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_comes_first_then_auth_then_ids() {
    let stack = account().await;
    let before = stack.tokens().await;
    let auth = format!("Bearer {}", stack.keys.jwt("o"));
    let got = stack.call(&http_api_event("GET", "o", "o-t", Some(&auth))).await;
    assert_eq!((got.status, got.body), error(405, "method not allowed"));
    let got = stack.call(&function_url_event("DELETE", "/api/peers/1", Some(&auth))).await;
    assert_eq!((got.status, got.body), error(404, "not found"));
    let got = stack.call(&function_url_event("OPTIONS", "/api/users/o/tokens/o-t", None)).await;
    assert_eq!(got.status, 204);
    assert_eq!(got.headers["access-control-allow-origin"], "*");
    // A bad id without credentials is an authentication failure first.
    let got = stack.call(&function_url_event("DELETE", "/api/users/%0A/tokens/t", None)).await;
    assert_eq!((got.status, got.body), error(401, "no valid authentication provided"));
    let got = stack.call(&function_url_event("DELETE", "/api/users/%0A/tokens/t", Some(&auth))).await;
    assert_eq!((got.status, got.body), error(400, "invalid user ID"));
    let long = "t".repeat(300);
    let got = stack.call(&function_url_event("DELETE", &format!("/api/users/o/tokens/{long}"), Some(&auth))).await;
    assert_eq!((got.status, got.body), error(400, "invalid token ID"));
    assert_eq!(stack.tokens().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_events_get_a_json_400() {
    let stack = account().await;
    let got = stack.call(&json!({ "hello": "world" })).await;
    assert_eq!((got.status, got.body), error(400, "invalid request"));
    assert_eq!(got.headers["content-type"], "application/json");
    assert!(stack.token_item("o", "o-t").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deletes_of_one_token_succeed_once() {
    let stack = account().await;
    let auth = format!("Bearer {}", stack.keys.jwt("o"));
    let calls = (0..16).map(|_| stack.delete("o", "o-t", Some(&auth)));
    let answers = futures_util::future::join_all(calls).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let not_found = answers.iter().filter(|a| (a.status, a.body.clone()) == error(404, "pat: o-t not found")).count();
    assert_eq!((ok, not_found), (1, 15));
    assert!(stack.token_item("o", "o-t").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_delete_is_pinned_to_the_callers_account() {
    let stack = account().await;
    // The token row says another account: a user moved between accounts
    // after the token was made, or a forged row. It must survive.
    stack.token("o", "o-moved", "acc-2", Some(now() + 86_400)).await;
    let got = stack.delete("o", "o-moved", Some(&format!("Bearer {}", stack.keys.jwt("o")))).await;
    assert_eq!((got.status, got.body), error(404, "pat: o-moved not found"));
    assert!(stack.token_item("o", "o-moved").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn sequential_round_trips_per_path() {
    use crate::common::faults::{rounds, FaultProxy};
    let proxy = FaultProxy::start(&endpoint()).await;
    proxy.set_latency(std::time::Duration::from_millis(30));
    let stack = Stack::with_endpoint(&proxy.endpoint).await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.service_user("s", ACCOUNT, "bot").await;
    for id in ["t1", "t2", "t3"] {
        stack.live_token("o", id).await;
        stack.live_token("s", id).await;
    }
    let pat = stack.live_token("o", "login").await;
    let jwt = format!("Bearer {}", stack.keys.jwt("o"));
    let measure = async |user: &str, token: &str, auth: &str| {
        proxy.seen.lock().unwrap().clear();
        assert_eq!(stack.delete(user, token, Some(auth)).await.status, 200);
        let calls = proxy.seen.lock().unwrap().clone();
        let mut ops: Vec<String> = calls.iter().map(|c| c.operation.clone()).collect();
        ops.sort();
        (rounds(&calls), ops)
    };
    let ops = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Self-delete with a JWT: the caller's row, then the delete.
    assert_eq!(measure("o", "t1", &jwt).await, (2, ops(&["DeleteItem", "GetItem"])));
    // On a service user: both rows at once, then the delete.
    assert_eq!(measure("s", "t1", &jwt).await, (2, ops(&["DeleteItem", "GetItem", "GetItem"])));
    // A PAT: the lookup, then the rows with the lastUsed write, then the delete.
    let pat = format!("Token {pat}");
    assert_eq!(measure("o", "t2", &pat).await, (3, ops(&["DeleteItem", "GetItem", "Query", "UpdateItem"])));
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_hostile_input_is_refused_without_touching_the_table() {
    let stack = account().await;
    let before = stack.tokens().await;
    let jwt = format!("Bearer {}", stack.keys.jwt("o"));
    let huge = "A".repeat(300 * 1024);

    let got = stack.delete("o", "o-t", Some(&format!("Bearer {huge}"))).await;
    assert_eq!((got.status, got.body), error(401, "token invalid"));
    let got = stack.delete("o", "o-t", Some(&format!("Token {huge}"))).await;
    assert_eq!((got.status, got.body), error(401, "token invalid"));

    let mut event = http_api_event("DELETE", "o", "o-t", Some(&jwt));
    event["body"] = json!(huge);
    let got = stack.call(&event).await;
    assert_eq!((got.status, got.body), error(400, "request body too large"));

    let long_id = "u".repeat(1024);
    let got = stack.call(&function_url_event("DELETE", &format!("/api/users/{long_id}/tokens/o-t"), Some(&jwt))).await;
    assert_eq!((got.status, got.body), error(400, "invalid user ID"));
    // Longer than any URI may be: lambda_http cannot make a request of it.
    for path in [format!("/api/users/{huge}/tokens/o-t"), format!("/{huge}")] {
        let got = stack.call(&function_url_event("DELETE", &path, Some(&jwt))).await;
        assert_eq!((got.status, got.body), error(400, "invalid request"));
    }

    assert_eq!(stack.tokens().await, before);

    // What would make lambda_http panic is dropped before it sees it: the
    // request is served as usual.
    stack.live_token("o", "o-3").await;
    stack.live_token("o", "o-4").await;
    stack.live_token("o", "o-5").await;
    let mut event = http_api_event("DELETE", "o", "o-3", Some(&jwt));
    event["headers"]["host"] = json!("not a host[");
    event["rawQueryString"] = json!("a b\u{1}#");
    let got = stack.call(&event).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    let mut event = rest_api_event("DELETE", "o", "o-4", Some(&jwt));
    event["body"] = json!("!!! not base64 !!!");
    event["isBase64Encoded"] = json!(true);
    event["requestContext"]["domainName"] = json!("bad domain:99999999");
    let got = stack.call(&event).await;
    assert_eq!((got.status, got.body), (200, json!({})));
    let got = stack.call(&function_url_event("DELETE", "no-leading-slash:99999", Some(&jwt))).await;
    assert_eq!((got.status, got.body), error(404, "not found"));
    let before = stack.tokens().await;

    // Header values a client cannot send through API Gateway, but an event can hold.
    let straddling = format!("Token nbp_{}é{}", "a".repeat(29), "0".repeat(5));
    let got = stack.call(&http_api_event("DELETE", "o", "o-t", Some(&straddling))).await;
    assert_eq!((got.status, got.body), error(401, "token invalid"), "fuzz finding: a PAT sliced mid-character");
    // Control characters make the event unreadable to lambda_http: a JSON
    // 400, not a runtime error. Non-ASCII is readable but no credential.
    let cases = [
        ("Bearer a\r\nx-evil: 1", error(400, "invalid request")),
        ("Token \u{0}\u{7}", error(400, "invalid request")),
        ("Bearer ünïcödé", error(401, "token invalid")),
    ];
    for (value, want) in cases {
        let got = stack.call(&http_api_event("DELETE", "o", "o-t", Some(value))).await;
        assert_eq!((got.status, got.body), want, "{value:?}");
        assert_eq!(got.headers["content-type"], "application/json", "{value:?}");
    }
    assert_eq!(stack.tokens().await, before);
}

/// Rows as a careless writer may leave them: flags of the wrong type count
/// as set, a role that is not a string grants nothing, and a row without
/// a string account is an error, never a pass.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_user_rows_fail_closed() {
    let stack = account().await;
    let odd = [
        ("b1", attr::BLOCKED, AttributeValue::S("true".into())),
        ("b2", attr::BLOCKED, AttributeValue::N("0".into())),
        ("p1", attr::PENDING_APPROVAL, AttributeValue::S("false".into())),
        ("r1", attr::ROLE, AttributeValue::N("1".into())),
        ("a1", attr::ACCOUNT_ID, AttributeValue::N("1".into())),
    ];
    for (id, attribute, value) in &odd {
        stack.put_user(id, ACCOUNT, "owner", &[(attribute, value.clone())]).await;
        stack.live_token(id, &format!("{id}-t")).await;
    }
    // A target whose account is not a string: its token is never deleted.
    stack.put_user("t1", ACCOUNT, "user", &[(attr::ACCOUNT_ID, AttributeValue::Bool(true))]).await;
    stack.live_token("t1", "t1-t").await;
    let before = stack.tokens().await;
    let jwt = |sub: &str| format!("Bearer {}", stack.keys.jwt(sub));
    let cases = [
        ("b1", "b1", "b1-t", error(403, "failed to validate user permissions: user is blocked")),
        ("b2", "b2", "b2-t", error(403, "failed to validate user permissions: user is blocked")),
        ("p1", "p1", "p1-t", error(403, "failed to validate user permissions: user is pending approval")),
        ("r1", "r1", "r1-t", error(403, "permission denied")),
        ("a1", "a1", "a1-t", error(500, "internal server error")),
        ("o", "t1", "t1-t", error(500, "internal server error")),
    ];
    for (caller, user, token, want) in cases {
        let got = stack.delete(user, token, Some(&jwt(caller))).await;
        assert_eq!((got.status, got.body), want, "{caller} deleting {user}/{token}");
    }
    assert_eq!(stack.tokens().await, before);
}

/// An existing table that differs from the schema (docs/spec.md §5, "An
/// existing table must have"): a tokens table without its
/// `hashedToken-index`, a users table keyed on another attribute. Each call
/// fails: a 500, never a wrong answer, and nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn tables_that_differ_from_the_schema_are_a_500_never_a_wrong_answer() {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    use netbird_delete_token::app::App;
    use netbird_delete_token::http::lambda::answer_event;
    use netbird_delete_token::storage::client::sdk_config;
    use netbird_delete_token::storage::dynamo::DynamoStore;

    let stack = account().await;
    let pat = format!("Token {}", stack.live_token("o", "o-login").await);
    let create = |name: String, keys: &'static [(&'static str, KeyType)]| {
        let client = stack.client.clone();
        async move {
            let mut request = client.create_table().table_name(&name).billing_mode(BillingMode::PayPerRequest);
            for (attribute, kind) in keys {
                request = request
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(*attribute)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .unwrap(),
                    )
                    .key_schema(
                        KeySchemaElement::builder().attribute_name(*attribute).key_type(kind.clone()).build().unwrap(),
                    );
            }
            request.send().await.unwrap();
            name
        }
    };
    let suffix = format!("{}-{}", std::process::id(), now());
    let no_index =
        create(format!("no-index-{suffix}"), &[("userId", KeyType::Hash), ("tokenId", KeyType::Range)]).await;
    let other_key = create(format!("other-key-{suffix}"), &[("id", KeyType::Hash)]).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(None).endpoint_url(&stack.dynamodb).load().await);
    let call = |config: netbird_delete_token::config::Config, event: serde_json::Value| {
        let store = std::sync::Arc::new(DynamoStore::new(client.clone(), &config));
        let app = std::sync::Arc::new(App::new(&config, store, None).unwrap());
        async move {
            let mut context = lambda_http::Context::default();
            context.request_id = "req-schema".into();
            context.deadline = now_ms() + 6_000;
            http_answer(answer_event(app, &serde_json::value::to_raw_value(&event).unwrap(), context).await)
        }
    };
    let before = stack.tokens().await;

    let tokens_without_index = netbird_delete_token::config::Config { tokens_table: no_index, ..stack.config.clone() };
    let got = call(tokens_without_index, http_api_event("DELETE", "o", "o-t", Some(&pat))).await;
    assert_eq!((got.status, got.body), error(500, "internal server error"), "a PAT needs the index");
    let users_by_other_key = netbird_delete_token::config::Config { users_table: other_key, ..stack.config.clone() };
    let jwt = format!("Bearer {}", stack.keys.jwt("o"));
    let got = call(users_by_other_key, http_api_event("DELETE", "o", "o-t", Some(&jwt))).await;
    assert_eq!((got.status, got.body), error(500, "internal server error"), "users are read by userId");
    assert_eq!(stack.tokens().await, before, "nothing changed");
}
