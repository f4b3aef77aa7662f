//! The table changes between the function's checks and its delete: the
//! conditional `DeleteItem` decides, and never removes what it should not.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::faults::FaultProxy;
use common::*;
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

async fn set(stack: &Stack, table: &str, key: &[(&str, &str)], attribute: &str, value: AttributeValue) {
    let mut update = stack.client.update_item().table_name(table).update_expression("SET #a = :v");
    for (k, v) in key {
        update = update.key(*k, AttributeValue::S(v.to_string()));
    }
    update.expression_attribute_names("#a", attribute).expression_attribute_values(":v", value).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_deleted_after_authentication_is_not_found() {
    let (stack, proxy) = stack_with_gate().await;
    let pat = stack.live_token("o", "o-login").await;
    let gate = proxy.hold("DeleteItem");
    let auth = format!("Token {pat}");
    let request = stack.delete("o", "o-t", Some(&auth));
    let meddle = async {
        gate.arrived().await;
        // Someone else deletes the token first.
        stack
            .client
            .delete_item()
            .table_name(&stack.config.tokens_table)
            .key("userId", AttributeValue::S("o".into()))
            .key("tokenId", AttributeValue::S("o-t".into()))
            .send()
            .await
            .unwrap();
        gate.release();
    };
    let (got, ()) = tokio::join!(request, meddle);
    assert_eq!((got.status, got.body), error(404, "pat: o-t not found"));
    assert_eq!(stack.tokens().await, vec![("o".into(), "o-login".into()), ("s".into(), "s-t".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_moved_to_another_account_keeps_its_token() {
    let (stack, proxy) = stack_with_gate().await;
    let gate = proxy.hold("DeleteItem");
    let auth = format!("Bearer {}", stack.keys.jwt("a"));
    let request = stack.delete("s", "s-t", Some(&auth));
    let meddle = async {
        gate.arrived().await;
        // The service user, and its token, move to another account.
        set(&stack, &stack.config.users_table, &[("userId", "s")], "accountId", AttributeValue::S("acc-2".into()))
            .await;
        let key = [("userId", "s"), ("tokenId", "s-t")];
        set(&stack, &stack.config.tokens_table, &key, "accountId", AttributeValue::S("acc-2".into())).await;
        gate.release();
    };
    let (got, ()) = tokio::join!(request, meddle);
    assert_eq!((got.status, got.body), error(404, "pat: s-t not found"));
    let token = stack.token_item("s", "s-t").await.expect("the token survives");
    assert_eq!(token["accountId"].as_s().unwrap(), "acc-2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_blocked_during_the_request_is_refused_on_the_next() {
    let (stack, proxy) = stack_with_gate().await;
    stack.live_token("o", "o-2").await;
    let gate = proxy.hold("DeleteItem");
    let auth = format!("Bearer {}", stack.keys.jwt("o"));
    let request = stack.delete("o", "o-t", Some(&auth));
    let meddle = async {
        gate.arrived().await;
        set(&stack, &stack.config.users_table, &[("userId", "o")], "blocked", AttributeValue::Bool(true)).await;
        gate.release();
    };
    let (got, ()) = tokio::join!(request, meddle);
    // The checks ran before the block: the delete is ordered before it.
    assert_eq!((got.status, got.body), (200, json!({})));
    proxy.clear();
    let again = stack.delete("o", "o-2", Some(&auth)).await;
    assert_eq!((again.status, again.body), error(403, "failed to validate user permissions: user is blocked"));
    assert!(stack.token_item("o", "o-2").await.is_some());
    assert!(stack.token_item("o", "o-t").await.is_none());
}
