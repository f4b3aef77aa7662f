//! NetBird's per-PAT rate limit across a fleet: the bucket lives in the
//! token's row and is paid from in the conditional write that marks the PAT
//! used, so it holds however many instances share the PAT. Which payment
//! DynamoDB takes is the store contract's (`store.rs`); what a request
//! makes of it, the unit tests' (`src/app.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::runtime_api::{function_binary, Function, RuntimeApi};
use crate::common::*;
use netbird_delete_token::clock::unix_millis;

/// Several instances (separate function processes) share one PAT and fire
/// at once: what gets through never exceeds burst + rate × time, and is not
/// far below it.
#[tokio::test(flavor = "multi_thread")]
async fn the_bucket_holds_across_instances() {
    const INSTANCES: usize = 4;
    const BURST: u64 = 10;
    // 240 a minute: a token back every 250 ms.
    let burst = BURST.to_string();
    let settings = [
        ("NB_API_RATE_LIMITING_ENABLED", "true"),
        ("NB_API_RATE_LIMITING_RPM", "240"),
        ("NB_API_RATE_LIMITING_BURST", burst.as_str()),
    ];
    let stack = Stack::with_settings(&settings).await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = format!("Token {}", stack.live_token("o", "o-login").await);
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
