//! NetBird's per-PAT rate limit against DynamoDB Local: the bucket lives in
//! the token's row and is paid from in the write that marks the PAT used,
//! so it holds across every instance. A refused request writes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::runtime_api::{function_binary, Function, RuntimeApi};
use crate::common::*;
use netbird_delete_token::clock::unix_millis;
use netbird_delete_token::config::RateLimit;
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::domain::rate_limit::Bucket;
use netbird_delete_token::domain::store::Store;
use netbird_delete_token::storage::dynamo::DynamoStore;
use serde_json::json;

const LIMITED: (u16, &str) = (429, "too many requests");

/// A stack whose PATs get `per_minute` and `burst`, and the owner `o`
/// with a PAT `o-login`: returns its `Authorization` header.
async fn limited(per_minute: &str, burst: &str) -> (Stack, String) {
    let settings = [
        ("NB_API_RATE_LIMITING_ENABLED", "true"),
        ("NB_API_RATE_LIMITING_RPM", per_minute),
        ("NB_API_RATE_LIMITING_BURST", burst),
    ];
    let stack = Stack::with_settings(&settings).await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = stack.live_token("o", "o-login").await;
    (stack, format!("Token {pat}"))
}

/// A request that gets past the limit answers 404: nothing to delete.
async fn knock(stack: &Stack, auth: &str) -> u16 {
    let got = stack.delete("o", "nope", Some(auth)).await;
    match got.status {
        404 => assert_eq!(got.body, json!({ "message": "pat: nope not found", "code": 404 })),
        429 => assert_eq!((got.status, got.body), error(LIMITED.0, LIMITED.1)),
        other => panic!("unexpected {other}: {}", got.body),
    }
    got.status
}

#[tokio::test(flavor = "multi_thread")]
async fn the_burst_then_429_until_the_bucket_refills() {
    // 30 a minute: a token back every 2 s; a burst of 3. The first four
    // requests, and the two after the wait, must each fit within 2 s.
    let (stack, pat) = limited("30", "3").await;
    for _ in 0..3 {
        assert_eq!(knock(&stack, &pat).await, 404);
    }
    let before = stack.token_item("o", "o-login").await.unwrap();
    assert!(before.rate_limited_until.is_some() && before.last_used.is_some());
    assert_eq!(knock(&stack, &pat).await, 429);
    assert_eq!(stack.token_item("o", "o-login").await.unwrap(), before, "a refused request writes nothing");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(knock(&stack, &pat).await, 404, "refilled");
    assert_eq!(knock(&stack, &pat).await, 429, "by one token");
    let after = stack.token_item("o", "o-login").await.unwrap();
    assert!(after.rate_limited_until > before.rate_limited_until);
}

#[tokio::test(flavor = "multi_thread")]
async fn off_it_never_answers_429_and_writes_no_bucket() {
    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = format!("Token {}", stack.live_token("o", "o-login").await);
    for _ in 0..30 {
        assert_eq!(knock(&stack, &pat).await, 404);
    }
    let row = stack.token_item("o", "o-login").await.unwrap();
    assert!(row.last_used.is_some());
    assert_eq!(row.rate_limited_until, None, "no bucket attribute when the limit is off");
}

#[tokio::test(flavor = "multi_thread")]
async fn jwts_are_never_limited() {
    let (stack, pat) = limited("1", "1").await;
    assert_eq!(knock(&stack, &pat).await, 404);
    assert_eq!(knock(&stack, &pat).await, 429);
    let bucket = stack.token_item("o", "o-login").await.unwrap().rate_limited_until;
    let jwt = format!("Bearer {}", stack.keys.jwt("o"));
    for _ in 0..10 {
        assert_eq!(knock(&stack, &jwt).await, 404);
    }
    assert_eq!(stack.token_item("o", "o-login").await.unwrap().rate_limited_until, bucket, "JWTs pay nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limited_token_deleted_takes_its_bucket_with_it() {
    let (stack, pat) = limited("1", "2").await;
    assert_eq!(knock(&stack, &pat).await, 404);
    assert_eq!(knock(&stack, &pat).await, 404);
    assert_eq!(knock(&stack, &pat).await, 429);
    let by_jwt = stack.delete("o", "o-login", Some(&format!("Bearer {}", stack.keys.jwt("o")))).await;
    assert_eq!((by_jwt.status, by_jwt.body), (200, json!({})));
    assert!(stack.token_item("o", "o-login").await.is_none(), "the row and its bucket are gone");
    let got = stack.delete("o", "nope", Some(&pat)).await;
    assert_eq!((got.status, got.body), error(401, "token invalid"));
}

/// Each payment the bucket proposes is one conditional write, and
/// DynamoDB's condition is the payment's own: with a stale copy of the
/// bucket (the index's), the first write fails and the second pays from
/// the bucket as the table has it, or both fail when that is over the
/// limit, writing nothing. A row that is gone takes no write.
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_takes_a_payment_exactly_when_the_bucket_admits_it() {
    let (stack, _) = limited("60", "2").await;
    let store = DynamoStore::new(stack.client.clone(), &stack.config);
    let bucket = Bucket::new(RateLimit { per_minute: 60, burst: 2 });
    let stale = stack.token_item("o", "o-login").await.unwrap(); // no bucket yet
    let now = unix_millis();
    let pay = || async {
        for payment in bucket.payments(stale.rate_limited_until, now) {
            let taken = store.record_use(&stale, now, Some(payment), &Deadline::Unknown).await.unwrap();
            let full_at = stack.token_item("o", "o-login").await.unwrap().rate_limited_until;
            if taken {
                return Some(full_at);
            }
        }
        None
    };
    assert_eq!(pay().await, Some(Some(now + 1_000)), "idle: full at now + one interval");
    // The copy still says "full"; the table says one request was paid.
    assert_eq!(pay().await, Some(Some(now + 2_000)), "the idle write fails, the busy one pays");
    assert_eq!(pay().await, None, "both writes refused: over the limit");
    let row = stack.token_item("o", "o-login").await.unwrap();
    assert_eq!((row.rate_limited_until, row.last_used), (Some(now + 2_000), Some((now / 1000) as i64)));
    let gone = PersonalAccessToken { token_id: "gone".into(), ..stale.clone() };
    assert_eq!(store.record_use(&gone, now, None, &Deadline::Unknown).await, Ok(false), "no row, no write");
    assert!(stack.token_item("o", "gone").await.is_none(), "never recreated");
}

/// Several instances (separate function processes) share one PAT and fire
/// at once: what gets through never exceeds burst + rate × time, and is not
/// far below it.
#[tokio::test(flavor = "multi_thread")]
async fn the_bucket_holds_across_instances() {
    const INSTANCES: usize = 4;
    const BURST: u64 = 10;
    // 240 a minute: a token back every 250 ms.
    let (stack, pat) = limited("240", &BURST.to_string()).await;
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        let runtime = Arc::new(RuntimeApi::start().await);
        let function = Function::spawn(function_binary(), &runtime, &stack.function_env(&stack.dynamodb));
        runtime.wait_first_poll(Duration::from_secs(20)).await.expect("init finished");
        instances.push((runtime, function));
    }
    let event = http_api_event("DELETE", "o", "nope", Some(&pat));
    let started = Instant::now();
    let flood = instances.iter().map(|(runtime, _)| {
        let event = event.clone();
        async move {
            let mut statuses = Vec::new();
            while started.elapsed() < Duration::from_millis(2_500) {
                statuses.push(http_answer(runtime.invoke(&event).await).status);
            }
            statuses
        }
    });
    let statuses: Vec<u16> = futures_util::future::join_all(flood).await.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    // The bucket never ran past its limit: a payment admitted at `now` left
    // it at most `burst` intervals ahead of that `now`, which is before this
    // read. One payment more would leave it a whole interval past that.
    let row = stack.token_item("o", "o-login").await.expect("the PAT's row is still there");
    let full_at = row.rate_limited_until.expect("the flood paid from the bucket");
    let read_at = unix_millis();
    assert!(full_at <= read_at + BURST * 250, "full at {full_at}, read at {read_at}");
    for (_, function) in instances {
        function.stop().await;
    }
    let through = statuses.iter().filter(|s| **s == 404).count() as u64;
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(through as usize + refused, statuses.len(), "only 404s and 429s: {statuses:?}");
    let most = BURST + elapsed.as_millis() as u64 / 250 + 1;
    assert!(through <= most, "{through} got through, at most {most} may in {elapsed:?}");
    assert!(through * 10 >= most * 8, "{through} got through, near {most} should in {elapsed:?}");
    assert!(refused > statuses.len() / 2, "the flood was refused: {refused} of {}", statuses.len());
    eprintln!(
        "flood: {} requests in {elapsed:?}, {through} through (at most {most}), {refused} refused",
        statuses.len()
    );
}
