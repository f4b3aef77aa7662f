//! The `delete-token` binary itself, driven through a local Lambda Runtime
//! API: init, logs, metrics, the audit line, and nothing secret in output.

use std::time::Duration;

use crate::common::faults::{rounds, Fault, FaultProxy};
use crate::common::idp::{Idp, Reply};
use crate::common::runtime_api::{function_binary, Function, RuntimeApi};
use crate::common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn serves_logs_and_counts_through_the_runtime_api() {
    let proxy = FaultProxy::start(&endpoint()).await;
    // Concurrent calls then overlap for certain.
    proxy.set_latency(Duration::from_millis(30));
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.service_user("s", ACCOUNT, "ci-bot").await;
    let pat = stack.live_token("o", "o-login").await;
    stack.live_token("s", "s-t").await;
    let runtime = RuntimeApi::start().await;
    let function = Function::spawn(function_binary(), &runtime, &stack.function_env(&proxy.endpoint));
    let ready = runtime.wait_first_poll(Duration::from_secs(20)).await.expect("the function finished init");

    // Init opened two DynamoDB connections, with a GetItem each at once,
    // before asking for work.
    let seen = proxy.seen.lock().unwrap().clone();
    let warm_up: Vec<_> = seen.iter().filter(|c| c.end < ready).cloned().collect();
    assert_eq!(warm_up.iter().map(|c| c.operation.as_str()).collect::<Vec<_>>(), ["GetItem", "GetItem"], "{seen:?}");
    assert_eq!(rounds(&warm_up), 1, "{seen:?}");

    let jwt = stack.keys.jwt("o");
    let deleted =
        http_answer(runtime.invoke(&http_api_event("DELETE", "s", "s-t", Some(&format!("Token {pat}")))).await);
    assert_eq!((deleted.status, deleted.body), (200, json!({})));
    let refused =
        http_answer(runtime.invoke(&http_api_event("DELETE", "s", "nope", Some(&format!("Bearer {jwt}")))).await);
    assert_eq!((refused.status, refused.body), error(404, "pat: nope not found"));
    let garbage = http_answer(runtime.invoke(&json!({ "not": "an http event" })).await);
    assert_eq!(garbage.status, 400);
    assert!(stack.token_item("s", "s-t").await.is_none());
    assert!(stack.token_item("o", "o-login").await.is_some());

    let lines = function.stop().await;
    let docs: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let requests: Vec<&Value> = docs.iter().filter(|d| d["message"] == "request").collect();
    assert_eq!(requests.len(), 3, "{lines:#?}");
    assert_eq!(requests[0]["outcome"], "deleted");
    assert_eq!(requests[0]["status"], 200);
    assert!(requests[0]["request_id"].as_str().unwrap().starts_with("00000000-"));
    assert!(requests[0]["duration_ms"].is_number());
    assert_eq!(requests[1]["outcome"], "token_not_found");
    assert_eq!(requests[2]["outcome"], "bad_request");

    // Each request line is also its EMF document.
    for (line, outcome, metric) in
        [(0, "deleted", "Deleted"), (1, "token_not_found", "Refused"), (2, "bad_request", "Refused")]
    {
        let doc = requests[line];
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NetBird/DeleteToken");
        assert_eq!(
            (doc["outcome"].as_str(), doc[metric].as_u64(), doc["Requests"].as_u64()),
            (Some(outcome), Some(1), Some(1))
        );
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]), "metrics without dimensions");
    }
    assert_eq!(docs.iter().filter(|d| d.get("_aws").is_some()).count(), 3, "no other EMF documents");

    let audit: Vec<&Value> = docs.iter().filter(|d| d["activity"] == 42).collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["activity_code"], "personal.access.token.delete");
    assert_eq!(audit[0]["initiator_id"], "o");
    assert_eq!(audit[0]["target_id"], "s");
    assert_eq!(audit[0]["account_id"], ACCOUNT);
    assert_eq!(audit[0]["token_id"], "s-t");
    assert_eq!(audit[0]["meta.name"], "name of s-t");
    assert_eq!(audit[0]["meta.is_service_user"], true);
    assert_eq!(audit[0]["meta.user_name"], "ci-bot");

    let everything = lines.join("\n");
    let hash = netbird_delete_token::auth::pat::hash_token(&pat);
    for secret in [pat.as_str(), &pat[4..34], hash.as_str(), jwt.as_str(), jwt.rsplit('.').next().unwrap()] {
        assert!(!everything.contains(secret), "a credential reached the output");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_setting_stops_the_function_at_init() {
    let stack = Stack::new().await;
    let runtime = RuntimeApi::start().await;
    let mut env = stack.function_env(&stack.dynamodb);
    env.retain(|(k, _)| *k != "AUTH_ISSUER");
    let mut function = Function::spawn(function_binary(), &runtime, &env);
    let code = function.exit_code(Duration::from_secs(20)).await;
    assert_eq!(code, Some(1));
    assert!(runtime.wait_first_poll(Duration::from_millis(10)).await.is_none(), "it never asked for work");
    let lines = function.stop().await;
    assert!(lines.iter().any(|l| l.contains("AUTH_ISSUER is required")), "{lines:#?}");

    // An allowed-groups list that names no group would turn the check off.
    let runtime = RuntimeApi::start().await;
    let mut env = stack.function_env(&stack.dynamodb);
    env.extend([("AUTH_JWT_GROUPS_CLAIM", "groups".into()), ("AUTH_JWT_ALLOW_GROUPS", " , ".into())]);
    let mut function = Function::spawn(function_binary(), &runtime, &env);
    assert_eq!(function.exit_code(Duration::from_secs(20)).await, Some(1));
    let lines = function.stop().await;
    assert!(lines.iter().any(|l| l.contains("AUTH_JWT_ALLOW_GROUPS is set but names no group")), "{lines:#?}");

    let runtime = RuntimeApi::start().await;
    let mut env = stack.function_env(&stack.dynamodb);
    env.retain(|(k, _)| *k != "AUTH_JWKS");
    env.push(("AUTH_JWKS", r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.into()));
    let mut function = Function::spawn(function_binary(), &runtime, &env);
    assert_eq!(function.exit_code(Duration::from_secs(20)).await, Some(1));
    let lines = function.stop().await;
    assert!(lines.iter().any(|l| l.contains("no usable signing key")), "{lines:#?}");
    assert!(!lines.join("\n").contains("c2VjcmV0"), "the key material is not logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_down_at_init_is_not_fatal() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let stack = Stack::new().await;
    let runtime = RuntimeApi::start().await;
    let function = Function::spawn(function_binary(), &runtime, &stack.function_env(&dead));
    assert!(runtime.wait_first_poll(Duration::from_secs(20)).await.is_some(), "init completed despite DynamoDB");
    let got = http_answer(
        runtime.invoke(&http_api_event("DELETE", "o", "t", Some(&format!("Bearer {}", stack.keys.jwt("o"))))).await,
    );
    assert_eq!((got.status, got.body), error(500, "internal server error"));
    let lines = function.stop().await;
    assert!(lines.iter().any(|l| l.contains("warm-up failed")), "{lines:#?}");
}

/// Asked for every log level there is, the function still logs no
/// credential, no token hash and no token row.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_log_at_trace_level() {
    const SECRET_KEY: &str = "secretKEYneverLOGGEDx0x0x0x0x0x0x0x0x0x0";
    const SESSION_TOKEN: &str = "sessionTOKENneverLOGGEDy1y1y1y1y1y1y1y1y1";
    for asked in [("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("RUST_LOG", "trace,aws_smithy_runtime=trace,hyper=trace")] {
        let stack = Stack::new().await;
        stack.user("o", ACCOUNT, "owner").await;
        let pat = stack.live_token("o", "o-login").await;
        stack.live_token("o", "o-t").await;
        let mut env = stack.function_env(&stack.dynamodb);
        env.push((asked.0, asked.1.into()));
        env.push(("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()));
        env.push(("AWS_SESSION_TOKEN", SESSION_TOKEN.into()));
        let runtime = RuntimeApi::start().await;
        let function = Function::spawn(function_binary(), &runtime, &env);
        runtime.wait_first_poll(Duration::from_secs(20)).await.expect("the function finished init");
        let jwt = stack.keys.jwt("o");
        let by_pat =
            http_answer(runtime.invoke(&http_api_event("DELETE", "o", "o-t", Some(&format!("Token {pat}")))).await);
        assert_eq!(by_pat.status, 200, "{:?}", by_pat.body);
        assert!(stack.token_item("o", "o-t").await.is_none());
        let by_jwt =
            http_answer(runtime.invoke(&http_api_event("DELETE", "o", "gone", Some(&format!("Bearer {jwt}")))).await);
        assert_eq!(by_jwt.status, 404);

        let everything = function.stop().await.join("\n");
        assert!(everything.contains("\"outcome\":\"deleted\""), "the log was read: {everything}");
        let hash = netbird_delete_token::auth::pat::hash_token(&pat);
        let secrets = [
            ("the PAT", pat.as_str()),
            ("the PAT's secret", &pat[4..34]),
            ("the token hash", hash.as_str()),
            ("the JWT", jwt.as_str()),
            ("the JWT's signature", jwt.rsplit('.').next().unwrap()),
            ("the secret access key", SECRET_KEY),
            ("the session token", SESSION_TOKEN),
        ];
        for (what, secret) in secrets {
            assert!(!everything.contains(secret), "{what} reached the log with {asked:?}");
        }
    }
}

/// `AUTH_OIDC_CONFIG_ENDPOINT`: the keys come from the configuration's
/// `jwks_uri`; a configuration that names another issuer gives no keys.
#[tokio::test(flavor = "multi_thread")]
async fn keys_found_by_oidc_discovery() {
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.live_token("o", "o-t").await;
    let idp = Idp::start().await;
    idp.set("/certs", Reply::json(stack.keys.jwks()));
    let configuration = |issuer: &str| json!({ "issuer": issuer, "jwks_uri": idp.url("/certs") }).to_string();
    let env_with = |discovery: String| {
        let mut env = stack.function_env(&stack.dynamodb);
        env.retain(|(k, _)| *k != "AUTH_JWKS");
        env.push(("AUTH_OIDC_CONFIG_ENDPOINT", discovery));
        env
    };

    idp.set("/good/.well-known/openid-configuration", Reply::json(configuration(ISSUER)));
    let runtime = RuntimeApi::start().await;
    let function =
        Function::spawn(function_binary(), &runtime, &env_with(idp.url("/good/.well-known/openid-configuration")));
    runtime.wait_first_poll(Duration::from_secs(20)).await.expect("the function finished init");
    let auth = format!("Bearer {}", stack.keys.jwt("o"));
    let got = http_answer(runtime.invoke(&http_api_event("DELETE", "o", "o-t", Some(&auth))).await);
    assert_eq!((got.status, got.body), (200, json!({})));
    assert!(stack.token_item("o", "o-t").await.is_none());
    function.stop().await;

    // A configuration naming another issuer: init never waits on the
    // provider, so it completes; JWTs get 500 with a log line naming the
    // issuer, PATs are served.
    idp.set("/evil/.well-known/openid-configuration", Reply::json(configuration("https://evil.example/")));
    stack.live_token("o", "o-2").await;
    let pat = stack.live_token("o", "o-login").await;
    let runtime = RuntimeApi::start().await;
    let function =
        Function::spawn(function_binary(), &runtime, &env_with(idp.url("/evil/.well-known/openid-configuration")));
    runtime.wait_first_poll(Duration::from_secs(20)).await.expect("init completed");
    let by_jwt = http_answer(runtime.invoke(&http_api_event("DELETE", "o", "o-2", Some(&auth))).await);
    assert_eq!((by_jwt.status, by_jwt.body), error(500, "internal server error"));
    let by_pat =
        http_answer(runtime.invoke(&http_api_event("DELETE", "o", "o-2", Some(&format!("Token {pat}")))).await);
    assert_eq!((by_pat.status, by_pat.body), (200, json!({})));
    assert!(stack.token_item("o", "o-2").await.is_none());
    let lines = function.stop().await;
    assert!(lines.iter().any(|l| l.contains("https://evil.example/") && l.contains("AUTH_ISSUER")), "{lines:#?}");
}

/// The audit lines (activity 42) among a function's output lines.
fn audit_lines(lines: &[String]) -> Vec<Value> {
    lines.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|d| d["activity"] == 42).collect()
}

/// Polls until `token` is gone from the table: DynamoDB applies a request
/// the function gave up on when the proxy forwards it.
async fn gone_within(stack: &Stack, user: &str, token: &str, limit: Duration) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if stack.token_item(user, token).await.is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// DynamoDB applies the delete and its answer is lost, or cut after the
/// status line and headers: the attempt was not answered, the retry finds
/// no row. 500, and the delete is in the audit trail: `unknown` when no
/// answer came, `deleted` when the cut answer's status said 2xx.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_whose_answer_is_lost_or_cut_is_a_500_and_audited() {
    for (fault, result) in [(Fault::LoseAnswer, "unknown"), (Fault::CutAfterHeaders, "deleted")] {
        let proxy = FaultProxy::start(&endpoint()).await;
        let stack = Stack::new().await;
        stack.user("o", ACCOUNT, "owner").await;
        stack.live_token("o", "o-t").await;
        stack.live_token("o", "o-keep").await;
        let runtime = RuntimeApi::start().await;
        let function = Function::spawn(function_binary(), &runtime, &stack.function_env(&proxy.endpoint));
        runtime.wait_first_poll(Duration::from_secs(20)).await.expect("the function finished init");
        proxy.once(fault, "DeleteItem");
        let auth = format!("Bearer {}", stack.keys.jwt("o"));
        let got = http_answer(runtime.invoke(&http_api_event("DELETE", "o", "o-t", Some(&auth))).await);
        assert_eq!((got.status, got.body), error(500, "internal server error"), "{fault:?}");
        assert_eq!(proxy.injected(), 1, "{fault:?}");
        let left = stack.tokens().await;
        assert_eq!(left, vec![("o".to_owned(), "o-keep".to_owned())], "{fault:?}: the first attempt was applied");

        let lines = function.stop().await;
        let audit = audit_lines(&lines);
        assert_eq!(audit.len(), 1, "{fault:?}: {lines:#?}");
        assert_eq!(audit[0]["activity_code"], "personal.access.token.delete");
        assert_eq!((audit[0]["result"].as_str(), audit[0]["token_id"].as_str()), (Some(result), Some("o-t")));
        assert_eq!(audit[0]["initiator_id"], "o");
        let docs: Vec<Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let request = docs.iter().find(|d| d["message"] == "request").expect("a request line");
        assert_eq!((request["outcome"].as_str(), request["status"].as_u64()), (Some("internal_error"), Some(500)));
    }
}

/// A 3 s function whose DynamoDB answers each call in 0.9 s. On the PAT
/// path (two rounds of reads) the delete starts with 0.7 s left: the time
/// left bounds it, the SDK gives up, DynamoDB still applies it. The answer
/// is 500 and the audit line says the outcome is unknown, where Lambda's
/// deadline used to cancel the call and leave no line. On the JWT path (one
/// round) the delete fits and succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_bounds_a_sent_delete_and_never_hides_it() {
    let proxy = FaultProxy::start(&endpoint()).await;
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = stack.live_token("o", "o-login").await;
    stack.live_token("o", "o-by-pat").await;
    stack.live_token("o", "o-by-jwt").await;
    let runtime = RuntimeApi::with_timeout(Duration::from_secs(3)).await;
    let function = Function::spawn(function_binary(), &runtime, &stack.function_env(&proxy.endpoint));
    runtime.wait_first_poll(Duration::from_secs(20)).await.expect("the function finished init");
    proxy.set_latency(Duration::from_millis(900));

    let by_pat = http_event_answer(&runtime, "o-by-pat", &format!("Token {pat}")).await;
    assert_eq!((by_pat.status, by_pat.body), error(500, "internal server error"));
    assert!(gone_within(&stack, "o", "o-by-pat", Duration::from_secs(3)).await, "DynamoDB applied the delete");
    let by_jwt = http_event_answer(&runtime, "o-by-jwt", &format!("Bearer {}", stack.keys.jwt("o"))).await;
    assert_eq!((by_jwt.status, by_jwt.body), (200, json!({})));
    assert!(stack.token_item("o", "o-by-jwt").await.is_none());
    assert!(stack.token_item("o", "o-login").await.is_some());

    let audit = audit_lines(&function.stop().await);
    let results: Vec<(&str, &str)> =
        audit.iter().map(|a| (a["token_id"].as_str().unwrap(), a["result"].as_str().unwrap())).collect();
    assert_eq!(results, [("o-by-pat", "unknown"), ("o-by-jwt", "deleted")], "{audit:#?}");
}

async fn http_event_answer(runtime: &RuntimeApi, token_id: &str, auth: &str) -> Answer {
    http_answer(runtime.invoke(&http_api_event("DELETE", "o", token_id, Some(auth))).await)
}

/// Lambda's filter of application logs, as documented: with the JSON log
/// format, a line below `level` is dropped, and a line that is not a JSON
/// object with a valid `level` and an RFC 3339 `timestamp` counts as INFO;
/// with the text format nothing is dropped.
fn kept_by_lambda(lines: &[String], json: bool, level: &str) -> Vec<Value> {
    const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rank = |name: &str| LEVELS.iter().position(|l| l.eq_ignore_ascii_case(name));
    let threshold = if json { rank(level).unwrap() } else { 0 };
    lines
        .iter()
        .filter_map(|line| {
            let doc: Option<Value> = serde_json::from_str(line).ok().filter(Value::is_object);
            let stamped = doc.as_ref().is_some_and(|d| d["timestamp"].as_str().is_some_and(is_rfc3339));
            let line_level = doc.as_ref().and_then(|d| d["level"].as_str()).and_then(rank).filter(|_| stamped);
            (line_level.unwrap_or(2) >= threshold).then(|| doc.unwrap_or_else(|| Value::String(line.clone())))
        })
        .collect()
}

/// `2026-12-01T14:28:10.123456Z`, or with an offset.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.into_iter().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (text.ends_with('Z') || text[19..].contains(['+', '-']))
}

/// The audit trail and the metrics the alarms read reach CloudWatch
/// whatever log level and format an operator sets, through Lambda's
/// controls or `RUST_LOG`: the lines are checked as Lambda filters them.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_and_the_metrics_survive_every_log_setting() {
    let mut settings: Vec<(bool, Vec<(&str, &str)>)> = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
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
    for (json, asked) in settings {
        let token_id = format!("t-{json}-{}", asked.first().map_or("none".into(), |(_, v)| v.to_lowercase()));
        stack.live_token("o", &token_id).await;
        let mut env = stack.function_env(&stack.dynamodb);
        env.extend(asked.iter().map(|(k, v)| (*k, v.to_string())));
        env.push(("AWS_LAMBDA_LOG_FORMAT", if json { "JSON" } else { "Text" }.into()));
        let runtime = RuntimeApi::start().await;
        let function = Function::spawn(function_binary(), &runtime, &env);
        runtime.wait_first_poll(Duration::from_secs(20)).await.expect("the function finished init");
        let got = http_event_answer(&runtime, &token_id, &format!("Token {pat}")).await;
        assert_eq!((got.status, got.body), (200, json!({})), "{json} {asked:?}");
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
        assert_eq!(request["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NetBird/DeleteToken");
    }
}
