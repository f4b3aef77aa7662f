//! DynamoDB failures between the function and DynamoDB Local: a single
//! transient fault is invisible, a persistent one is a prompt 500 that
//! changes nothing, and the function serves again once it clears.

use std::time::{Duration, Instant};

use crate::common::faults::{Fault, FaultProxy};
use crate::common::*;
use serde_json::json;

/// The function's own limit (template.yaml `Timeout`).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(6);

async fn stack_behind_proxy() -> (Stack, FaultProxy) {
    let proxy = FaultProxy::start(&endpoint()).await;
    let stack = Stack::with_endpoint(&proxy.endpoint).await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.live_token("o", "o-t").await;
    stack.live_token("o", "o-keep").await;
    (stack, proxy)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_transient_fault_is_absorbed_on_every_call() {
    let cases = [
        (Fault::Throttling, "DeleteItem"),
        (Fault::ThroughputExceeded, "GetItem"),
        (Fault::ServerError, "Query"),
        (Fault::Reset, "DeleteItem"),
        (Fault::Reset, "GetItem"),
        (Fault::Stall, "Query"),
    ];
    for (fault, operation) in cases {
        let (stack, proxy) = stack_behind_proxy().await;
        let pat = stack.live_token("o", "o-login").await;
        proxy.once(fault, operation);
        let got = stack.delete("o", "o-t", Some(&format!("Token {pat}"))).await;
        assert_eq!((got.status, got.body), (200, json!({})), "{fault:?} on {operation}");
        assert_eq!(proxy.injected(), 1, "{fault:?} on {operation} was injected");
        assert_eq!(
            stack.tokens().await,
            vec![("o".into(), "o-keep".into()), ("o".into(), "o-login".into())],
            "{fault:?} on {operation}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_persistent_fault_is_a_prompt_500_and_then_clears() {
    let cases = [
        (Fault::Throttling, "DeleteItem"),
        (Fault::ServerError, "GetItem"),
        (Fault::Reset, "Query"),
        (Fault::Stall, "DeleteItem"),
    ];
    for (fault, operation) in cases {
        let (stack, proxy) = stack_behind_proxy().await;
        let pat = stack.live_token("o", "o-login").await;
        let before = stack.tokens().await;
        proxy.always(fault, operation);
        let started = Instant::now();
        let got = stack.delete("o", "o-t", Some(&format!("Token {pat}"))).await;
        let took = started.elapsed();
        assert_eq!((got.status, got.body), error(500, "internal server error"), "{fault:?} on {operation}");
        assert!(took < LAMBDA_TIMEOUT, "{fault:?} on {operation} took {took:?}");
        assert!(proxy.injected() >= 2, "{fault:?} on {operation} was retried");
        assert_eq!(stack.tokens().await, before, "{fault:?} on {operation} changed the table");

        proxy.clear();
        let got = stack.delete("o", "o-t", Some(&format!("Token {pat}"))).await;
        assert_eq!((got.status, got.body), (200, json!({})), "after {fault:?} on {operation} cleared");
        assert!(stack.token_item("o", "o-t").await.is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_dynamodb_is_a_prompt_500() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let stack = Stack::with_endpoint(&endpoint).await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.live_token("o", "o-t").await;
    let started = Instant::now();
    let got = stack.delete("o", "o-t", Some(&format!("Bearer {}", stack.keys.jwt("o")))).await;
    assert_eq!((got.status, got.body), error(500, "internal server error"));
    assert!(started.elapsed() < LAMBDA_TIMEOUT, "took {:?}", started.elapsed());
    assert!(stack.token_item("o", "o-t").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_that_never_answers_is_a_prompt_500() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    // Accept connections and never write a byte.
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let stack = Stack::with_endpoint(&endpoint).await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.live_token("o", "o-t").await;
    let started = Instant::now();
    let got = stack.delete("o", "o-t", Some(&format!("Bearer {}", stack.keys.jwt("o")))).await;
    assert_eq!((got.status, got.body), error(500, "internal server error"));
    assert!(started.elapsed() < LAMBDA_TIMEOUT, "took {:?}", started.elapsed());
    assert!(stack.token_item("o", "o-t").await.is_some());
    held.abort();
}

/// DynamoDB applied the delete, the answer was lost, the retry found no
/// row: the function cannot know it was its own, so it says 500, not 404.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_whose_answer_was_lost_is_a_500_never_a_404() {
    let (stack, proxy) = stack_behind_proxy().await;
    proxy.once(Fault::LoseAnswer, "DeleteItem");
    let got = stack.delete("o", "o-t", Some(&format!("Bearer {}", stack.keys.jwt("o")))).await;
    assert_eq!((got.status, got.body), error(500, "internal server error"));
    assert_eq!(proxy.injected(), 1);
    assert_eq!(stack.tokens().await, vec![("o".into(), "o-keep".into())], "the first attempt was applied");
    let deletes = proxy.seen.lock().unwrap().iter().filter(|c| c.operation == "DeleteItem").count();
    assert_eq!(deletes, 2, "the SDK retried");
}

/// A throttled attempt was certainly not applied: the retry's answer stands.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_refused_attempt_a_missing_token_is_still_404() {
    let (stack, proxy) = stack_behind_proxy().await;
    proxy.once(Fault::Throttling, "DeleteItem");
    let got = stack.delete("o", "gone", Some(&format!("Bearer {}", stack.keys.jwt("o")))).await;
    assert_eq!((got.status, got.body), error(404, "pat: gone not found"));
    assert_eq!(proxy.injected(), 1);
    assert_eq!(stack.tokens().await, vec![("o".into(), "o-keep".into()), ("o".into(), "o-t".into())]);
}

/// The test servers forward what they read: a chunked body arrives whole,
/// with a head that says its length (not `chunked` over a plain body).
#[tokio::test]
async fn the_proxy_forwards_a_chunked_body_with_its_length() {
    use crate::common::http1::{header, read_message, to_bytes};
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-a: 1\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let (head, body) = read_message(&mut &wire[..]).await.unwrap();
    assert_eq!(body, b"abcde");
    assert_eq!(header(&head, "transfer-encoding"), None);
    assert_eq!(header(&head, "content-length").as_deref(), Some("5"));
    assert_eq!(header(&head, "x-a").as_deref(), Some("1"));
    let (again, body) = read_message(&mut &to_bytes(&head, &body)[..]).await.unwrap();
    assert_eq!((again, body), (head, b"abcde".to_vec()), "what is forwarded reads back the same");
}
