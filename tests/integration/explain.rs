//! `make explain` (`src/bin/explain.rs`) tried as an operator would: what
//! the function would answer and why, the credential on standard input,
//! and nothing written: no delete, no `lastUsed`, no bucket payment, no key
//! cache entry, seen both in the tables and in the calls it made.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::faults::{Fault, FaultProxy};
use crate::common::*;

/// `explain` on `stack`'s settings with `extra`, through `proxy`: its exit
/// code and what it printed.
fn explain(
    stack: &Stack,
    proxy: &FaultProxy,
    extra: &[(&str, &str)],
    user: &str,
    token: &str,
    credential: &str,
) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_explain"));
    command.args(["--user", user, "--token", token]).env_clear();
    command.envs(stack.function_env(&proxy.endpoint)).envs(extra.iter().copied());
    command.envs([("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")]);
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(credential.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!printed.contains(credential), "the credential is never printed");
    (out.status.code().unwrap(), printed)
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_says_what_the_function_would_answer_and_changes_nothing() {
    let stack = Stack::new().await;
    let proxy = FaultProxy::for_a_tool(&endpoint()).await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.user("u", ACCOUNT, "user").await;
    stack.live_token("o", "o-t").await;
    let pat = stack.live_token("o", "o-login").await;
    let before = (stack.tokens().await, stack.token_item("o", "o-login").await);

    let (code, printed) = explain(&stack, &proxy, &[], "o", "o-t", &pat);
    assert_eq!(code, 0, "{printed}");
    for said in ["credential: a PAT", "PAT o-login of user o", "the token is there", "would answer 200"] {
        assert!(printed.contains(said), "{said}: {printed}");
    }
    let mut other_audience = claims("o");
    other_audience["aud"] = "netbird-dashboard".into();
    let dashboard = format!("Bearer {}", stack.keys.es256.sign(&other_audience).unwrap());
    let (code, printed) = explain(&stack, &proxy, &[], "o", "o-t", &dashboard);
    assert_eq!(code, 1, "{printed}");
    for said in [
        "ok   iss",
        "FAIL aud [\"netbird-dashboard\"] names one of AUTH_AUDIENCE",
        "jwt_wrong_audience",
        r#"401 {"code":401,"message":"token invalid"}"#,
    ] {
        assert!(printed.contains(said), "{said}: {printed}");
    }
    let (code, printed) = explain(&stack, &proxy, &[], "u", "u-t", &stack.keys.jwt("u"));
    assert_eq!(code, 1);
    assert!(
        printed.contains("role user") && printed.contains(r#"403 {"code":403,"message":"permission denied"}"#),
        "{printed}"
    );
    let limited = [("NB_API_RATE_LIMITING_ENABLED", "true"), ("NB_API_RATE_LIMITING_BURST", "1")];
    let empty_bucket = PersonalAccessToken { rate_limited_until: Some(now_ms() + 60_000), ..before.1.clone().unwrap() };
    stack
        .client
        .put_item()
        .table_name(&stack.config.tokens_table)
        .set_item(Some(empty_bucket.to_item()))
        .send()
        .await
        .unwrap();
    let (code, printed) = explain(&stack, &proxy, &limited, "o", "o-t", &pat);
    assert_eq!(code, 1);
    assert!(
        printed.contains("bucket is full again in")
            && printed.contains(r#"429 {"code":429,"message":"too many requests"}"#),
        "{printed}"
    );

    proxy.always(Fault::ServerError, "GetItem");
    let (code, printed) = explain(&stack, &proxy, &[], "o", "o-t", &stack.keys.jwt("o"));
    assert_eq!(code, 1);
    assert!(printed.contains("a storage call failed") && printed.contains("InternalServerError"), "{printed}");

    assert_eq!(stack.tokens().await, before.0, "nothing deleted");
    assert_eq!(stack.token_item("o", "o-login").await, Some(empty_bucket), "no lastUsed, no payment");
    let keys_table = stack.config.key_cache_table.as_deref().unwrap();
    assert_eq!(stack.client.scan().table_name(keys_table).send().await.unwrap().count, 0, "no key cache entry");
    let operations: std::collections::BTreeSet<String> =
        proxy.seen.lock().unwrap().iter().map(|c| c.operation.clone()).collect();
    assert_eq!(operations, ["GetItem", "Query"].map(String::from).into(), "reads only");
}
