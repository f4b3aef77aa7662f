//! The table changes between the function's checks and its delete: the
//! conditional `DeleteItem` decides, and never removes what it should not.

use std::future::Future;

use crate::common::faults::FaultProxy;
use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use netbird_delete_token::storage::items::Item;
use serde_json::json;

async fn stack_with_gate() -> (Stack, FaultProxy) {
    let proxy = FaultProxy::start(&endpoint()).await;
    let stack = Stack::with_endpoint(&proxy.endpoint).await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.user("a", ACCOUNT, "admin").await;
    stack.service_user("s", ACCOUNT, "bot").await;
    stack.live_token("o", "o-t").await;
    stack.live_token("s", "s-t").await;
    (stack, proxy)
}

/// `request`, with `meddle` run while its first `operation` call is held
/// at the proxy: the table changes between the function's reads and that call.
async fn meddling(
    proxy: &FaultProxy,
    operation: &'static str,
    request: impl Future<Output = Answer>,
    meddle: impl Future<Output = ()>,
) -> Answer {
    let gate = proxy.hold(operation);
    let meddle = async {
        gate.arrived().await;
        meddle.await;
        gate.release();
    };
    tokio::join!(request, meddle).0
}

async fn set(stack: &Stack, table: &str, key: Item, attribute: &str, value: AttributeValue) {
    let update = stack.client.update_item().table_name(table).set_key(Some(key)).update_expression("SET #a = :v");
    update.expression_attribute_names("#a", attribute).expression_attribute_values(":v", value).send().await.unwrap();
}

async fn delete_row(stack: &Stack, user: &str, token: &str) {
    let key = token_key(&user.into(), &token.into());
    stack.client.delete_item().table_name(&stack.config.tokens_table).set_key(Some(key)).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_deleted_after_authentication_is_not_found() {
    let (stack, proxy) = stack_with_gate().await;
    let pat = stack.live_token("o", "o-login").await;
    let auth = format!("Token {pat}");
    let request = stack.delete("o", "o-t", Some(&auth));
    let meddle = async {
        // Someone else deletes the token first.
        delete_row(&stack, "o", "o-t").await;
    };
    let got = meddling(&proxy, "DeleteItem", request, meddle).await;
    assert_eq!((got.status, got.body), error(404, "pat: o-t not found"));
    assert_eq!(stack.tokens().await, vec![("o".into(), "o-login".into()), ("s".into(), "s-t".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_moved_to_another_account_keeps_its_token() {
    let (stack, proxy) = stack_with_gate().await;
    let auth = format!("Bearer {}", stack.keys.jwt("a"));
    let request = stack.delete("s", "s-t", Some(&auth));
    let meddle = async {
        // The service user, and its token, move to another account.
        let acc_2 = AttributeValue::S("acc-2".into());
        set(&stack, &stack.config.users_table, user_key(&"s".into()), attr::ACCOUNT_ID, acc_2.clone()).await;
        let key = token_key(&"s".into(), &"s-t".into());
        set(&stack, &stack.config.tokens_table, key, attr::ACCOUNT_ID, acc_2).await;
    };
    let got = meddling(&proxy, "DeleteItem", request, meddle).await;
    assert_eq!((got.status, got.body), error(404, "pat: s-t not found"));
    let token = stack.token_item("s", "s-t").await.expect("the token survives");
    assert_eq!(token.account_id.as_str(), "acc-2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_blocked_during_the_request_is_refused_on_the_next() {
    let (stack, proxy) = stack_with_gate().await;
    stack.live_token("o", "o-2").await;
    let auth = format!("Bearer {}", stack.keys.jwt("o"));
    let request = stack.delete("o", "o-t", Some(&auth));
    let meddle = async {
        set(&stack, &stack.config.users_table, user_key(&"o".into()), attr::BLOCKED, AttributeValue::Bool(true)).await;
    };
    let got = meddling(&proxy, "DeleteItem", request, meddle).await;
    // The checks ran before the block: the delete is ordered before it.
    assert_eq!((got.status, got.body), (200, json!({})));
    proxy.clear();
    let again = stack.delete("o", "o-2", Some(&auth)).await;
    assert_eq!((again.status, again.body), error(403, "failed to validate user permissions: user is blocked"));
    assert!(stack.token_item("o", "o-2").await.is_some());
    assert!(stack.token_item("o", "o-t").await.is_none());
}

/// The `hashedToken-index` is eventually consistent: it can still find a
/// PAT whose row was deleted a moment ago. The row itself decides.
#[tokio::test(flavor = "multi_thread")]
async fn a_pat_deleted_after_the_index_found_it_stops_working_at_once() {
    let (stack, proxy) = stack_with_gate().await;
    let pat = stack.live_token("o", "o-leaked").await;
    let auth = format!("Token {pat}");
    let request = stack.delete("o", "o-t", Some(&auth));
    let meddle = async {
        // The leaked PAT is revoked after the index answered.
        delete_row(&stack, "o", "o-leaked").await;
    };
    let got = meddling(&proxy, "UpdateItem", request, meddle).await;
    assert_eq!((got.status, got.body), error(401, "token invalid"));
    assert_eq!(stack.tokens().await, vec![("o".into(), "o-t".into()), ("s".into(), "s-t".into())]);
    let calls: Vec<String> = proxy.seen.lock().unwrap().iter().map(|c| c.operation.clone()).collect();
    assert!(!calls.contains(&"DeleteItem".to_owned()), "{calls:?}");
}
