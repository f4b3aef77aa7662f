//! 20,000 mixed requests through one warm function instance: every answer
//! as expected, memory flat, and the table exactly as predicted.

use std::time::Duration;

use crate::common::runtime_api::{function_binary, Function, RuntimeApi};
use crate::common::*;
use serde_json::{json, Value};

const REQUESTS: usize = 20_000;
const KINDS: usize = 10;
const DELETES: usize = REQUESTS / KINDS;
/// RSS may grow this much after warm-up (allocator slack, caches).
const RSS_GROWTH_LIMIT_KIB: u64 = 4 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn twenty_thousand_mixed_requests_through_one_instance() {
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.user("a", ACCOUNT, "admin").await;
    stack.user("u", ACCOUNT, "user").await;
    let owner_pat = stack.live_token("o", "login").await;
    stack.live_token("u", "u-t").await;
    let ids: Vec<String> = (0..DELETES).map(|i| format!("k-{i}")).collect();
    for chunk in ids.chunks(64) {
        futures_util::future::join_all(chunk.iter().map(|id| stack.live_token("o", id))).await;
    }
    let before = stack.tokens().await;

    let runtime = RuntimeApi::start().await;
    let mut env = stack.function_env(&stack.dynamodb);
    env.push(("AWS_LAMBDA_LOG_LEVEL", "warn".to_owned()));
    let function = Function::spawn(function_binary(), &runtime, &env);
    runtime.wait_first_poll(Duration::from_secs(30)).await.expect("init finished");

    let owner_jwt = format!("Bearer {}", stack.keys.jwt("o"));
    let admin_jwt = format!("Bearer {}", stack.keys.jwt("a"));
    let user_jwt = format!("Bearer {}", stack.keys.jwt("u"));
    let owner_pat = format!("Token {owner_pat}");
    let unknown_pat = format!("Token {}", netbird_delete_token::auth::pat::generate().unwrap());

    let mut warm_rss = 0;
    for i in 0..REQUESTS {
        let n = i / KINDS;
        let (event, want): (Value, (u16, Value)) = match i % KINDS {
            0 => {
                let auth = if n % 2 == 0 { &owner_jwt } else { &owner_pat };
                (http_api_event("DELETE", "o", &ids[n], Some(auth)), (200, json!({})))
            }
            1 => (http_api_event("DELETE", "o", "k-0", None), error(401, "no valid authentication provided")),
            2 => (http_api_event("DELETE", "o", "k-0", Some("Bearer x.y.z")), error(401, "token invalid")),
            3 => (rest_api_event("DELETE", "o", "k-0", Some(&unknown_pat)), error(401, "token invalid")),
            4 => (http_api_event("DELETE", "u", "u-t", Some(&user_jwt)), error(403, "permission denied")),
            5 => (
                http_api_event("DELETE", "o", "login", Some(&admin_jwt)),
                error(403, "admin role required to perform this action"),
            ),
            6 => (http_api_event("DELETE", "o", "missing", Some(&owner_jwt)), error(404, "pat: missing not found")),
            7 => (
                function_url_event("DELETE", "/api/users/o/tokens/%0A", Some(&owner_jwt)),
                error(400, "invalid token ID"),
            ),
            8 => (http_api_event("GET", "o", "login", Some(&owner_jwt)), error(405, "method not allowed")),
            _ => (json!({ "garbage": i }), error(400, "invalid request")),
        };
        let got = http_answer(runtime.invoke(&event).await);
        assert_eq!((got.status, got.body), want, "request {i}");
        if i == 2_000 {
            warm_rss = function.memory_kib("VmRSS:");
        }
    }
    let end_rss = function.memory_kib("VmRSS:");
    println!("RSS after 2,000 requests: {warm_rss} KiB; after {REQUESTS}: {end_rss} KiB");
    function.stop().await;
    assert!(end_rss <= warm_rss + RSS_GROWTH_LIMIT_KIB, "RSS grew from {warm_rss} KiB to {end_rss} KiB");

    let want: Vec<_> = before.into_iter().filter(|(_, t)| !t.starts_with("k-")).collect();
    assert_eq!(stack.tokens().await, want);
    let login = stack.token_item("o", "login").await.unwrap();
    assert!(login.last_used.is_some(), "the PAT's use was recorded");
}
