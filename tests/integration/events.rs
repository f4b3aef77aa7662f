//! Every sample event in `events/` gives the answer `events/README.md`
//! promises, against the stack `make run` seeds.

use crate::common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn sample_events_answer_as_documented() {
    let stack = Stack::new().await;
    let key = std::env::temp_dir().join(format!("events-dev-key-{}.p8", std::process::id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args(["demo", "--key"])
        .arg(&key)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TOKENS_TABLE", &stack.config.tokens_table)
        .env("USERS_TABLE", &stack.config.users_table)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::remove_file(key);

    let error = |code: u16, message: &str| error(code, message).1;
    let cases: [(&str, u16, Value); 8] = [
        ("http-api-delete.json", 200, json!({})),
        ("rest-api-delete.json", 200, json!({})),
        ("function-url-delete.json", 200, json!({})),
        ("http-api-missing-auth.json", 401, error(401, "no valid authentication provided")),
        ("http-api-bad-token.json", 401, error(401, "token invalid")),
        ("http-api-forbidden.json", 403, error(403, "permission denied")),
        ("http-api-not-found.json", 404, error(404, "pat: no-such-token not found")),
        ("http-api-preflight.json", 204, Value::Null),
    ];
    let before = stack.tokens().await;
    for (file, status, body) in &cases {
        let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let got = stack.call(&event).await;
        assert_eq!((got.status, &got.body), (*status, body), "{file}");
    }
    let gone = ["owner-event-http", "owner-event-rest", "owner-event-url"];
    let want: Vec<_> = before.into_iter().filter(|(_, t)| !gone.contains(&t.as_str())).collect();
    assert_eq!(stack.tokens().await, want);
    // A second run of a delete event finds nothing to delete.
    let event: Value = serde_json::from_str(include_str!("../../events/http-api-delete.json")).unwrap();
    let again = stack.call(&event).await;
    assert_eq!((again.status, again.body), (404, error(404, "pat: owner-event-http not found")));
}
