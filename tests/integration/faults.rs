//! DynamoDB's own faults, between the store and DynamoDB Local: a single
//! transient fault is retried and invisible; a persistent one, or a
//! DynamoDB that never answers, is a prompt error that changes nothing; a
//! delete whose answer is lost or cut after its status line is reported
//! as unconfirmed, never as not found. What the app makes of each is the
//! unit tests' (`src/app.rs`).

use std::time::{Duration, Instant};

use crate::common::faults::{Fault, FaultProxy};
use crate::common::*;
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::domain::store::{Deletion, Store};

/// Well within the template's 6 s timeout.
const PROMPT: Duration = Duration::from_millis(4_500);

async fn behind_proxy() -> (Stack, FaultProxy) {
    let proxy = FaultProxy::start(&endpoint()).await;
    let stack = Stack::with_endpoint(&proxy.endpoint).await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.live_token("o", "o-t").await;
    (stack, proxy)
}

/// The calls of a PAT's delete, each as the request path makes it.
async fn calls(stack: &Stack, pat: &PersonalAccessToken) -> Result<Deletion, String> {
    let time = Deadline::after(Duration::from_millis(5_500));
    let store = &stack.store;
    store.token_by_hash(&pat.hashed_token, &time).await.map_err(|e| e.to_string())?;
    store.user(&"o".into(), &time).await.map_err(|e| e.to_string())?;
    store.record_use(pat, now_ms(), None, &time).await.map_err(|e| e.to_string())?;
    store.delete_token(&"o".into(), &"o-t".into(), &ACCOUNT.into(), &time).await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_fault_is_invisible_and_a_persistent_one_a_prompt_error() {
    let transient = [
        (Fault::Throttling, "DeleteItem"),
        (Fault::ThroughputExceeded, "GetItem"),
        (Fault::ServerError, "Query"),
        (Fault::Reset, "UpdateItem"),
        (Fault::Stall, "Query"),
    ];
    for (fault, operation) in transient {
        let (stack, proxy) = behind_proxy().await;
        stack.live_token("o", "o-login").await;
        let pat = stack.token_item("o", "o-login").await.unwrap();
        proxy.once(fault, operation);
        assert_eq!(
            calls(&stack, &pat).await,
            Ok(Deletion::Deleted { name: "name of o-t".into() }),
            "{fault:?} on {operation}"
        );
        assert_eq!(proxy.injected(), 1, "{fault:?} on {operation} was injected");
        let used = stack.token_item("o", "o-login").await.and_then(|t| t.last_used);
        assert!(stack.token_item("o", "o-t").await.is_none() && used.is_some(), "{fault:?} on {operation}");
    }
    let persistent = [
        (Fault::Throttling, "DeleteItem"),
        (Fault::ServerError, "GetItem"),
        (Fault::Reset, "Query"),
        (Fault::Stall, "UpdateItem"),
    ];
    for (fault, operation) in persistent {
        let (stack, proxy) = behind_proxy().await;
        stack.live_token("o", "o-login").await;
        let pat = stack.token_item("o", "o-login").await.unwrap();
        proxy.always(fault, operation);
        let started = Instant::now();
        let got = calls(&stack, &pat).await;
        assert!(got.as_ref().is_err_and(|e| e.contains(operation)), "{fault:?} on {operation}: {got:?}");
        assert!(started.elapsed() < PROMPT, "{fault:?} on {operation} took {:?}", started.elapsed());
        assert!(proxy.injected() >= 2, "{fault:?} on {operation} was retried");
        assert!(stack.token_item("o", "o-t").await.is_some(), "{fault:?} on {operation} changed the table");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dynamodb_unreachable_or_silent_is_a_prompt_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let silent = crate::common::idp::Idp::silent().await;
    for endpoint in [unreachable, silent.url("")] {
        let stack = Stack::with_endpoint(&endpoint).await;
        let started = Instant::now();
        let time = Deadline::after(Duration::from_millis(5_500));
        let got = stack.store.delete_token(&"o".into(), &"t".into(), &ACCOUNT.into(), &time).await;
        assert!(started.elapsed() < PROMPT, "{endpoint}: {:?}", started.elapsed());
        assert!(!matches!(got, Ok(Deletion::Deleted { .. }) | Ok(Deletion::NotFound)), "{endpoint}: {got:?}");
    }
}

/// DynamoDB applies the delete and its answer is lost, or cut after the
/// status line: the retry finds no row, and the store says the delete is
/// unconfirmed (applied, when the cut answer said 2xx), never not found.
/// After a refused attempt, a missing token is still simply not found.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_whose_answer_is_lost_or_cut_is_unconfirmed_never_not_found() {
    for (fault, applied) in [(Fault::LoseAnswer, false), (Fault::CutAfterHeaders, true)] {
        let (stack, proxy) = behind_proxy().await;
        proxy.once(fault, "DeleteItem");
        let time = Deadline::after(Duration::from_millis(5_500));
        let got = stack.store.delete_token(&"o".into(), &"o-t".into(), &ACCOUNT.into(), &time).await;
        assert!(matches!(got, Ok(Deletion::Unconfirmed { applied: a, .. }) if a == applied), "{fault:?}: {got:?}");
        assert!(stack.token_item("o", "o-t").await.is_none(), "{fault:?}: the first attempt was applied");
    }
    let (stack, proxy) = behind_proxy().await;
    proxy.once(Fault::ServerError, "DeleteItem");
    let time = Deadline::after(Duration::from_millis(5_500));
    let got = stack.store.delete_token(&"o".into(), &"missing".into(), &ACCOUNT.into(), &time).await;
    assert!(matches!(got, Ok(Deletion::Unconfirmed { .. })), "a 5xx may have been applied: {got:?}");
    proxy.once(Fault::Throttling, "DeleteItem");
    let got = stack.store.delete_token(&"o".into(), &"missing".into(), &ACCOUNT.into(), &time).await;
    assert_eq!(got, Ok(Deletion::NotFound), "a throttled attempt was certainly not applied");
}
