//! Every sample event in `events/` gives the answer the table of
//! `events/README.md` promises, against the stack `make run` seeds; a
//! delete's second run finds nothing to delete.

use crate::common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn sample_events_answer_as_their_table_says() {
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
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/events/README.md")).unwrap();
    let rows: Vec<Vec<&str>> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().trim_matches('`')).collect())
        .collect();
    let files = std::fs::read_dir(format!("{root}/events"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"));
    assert_eq!(rows.len(), files.count(), "one row for each event");
    for row in rows {
        let (file, answer) = (row[0], row[2]);
        let (status, message) = answer.split_once(' ').unwrap_or((answer, ""));
        let status: u16 = status.parse().unwrap();
        let body = match (status, message) {
            (204, _) => Value::Null,
            (_, "{}") => json!({}),
            (status, message) => error(status, message).1,
        };
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{root}/events/{file}")).unwrap()).unwrap();
        let before = stack.tokens().await;
        let got = stack.call(&event).await;
        assert_eq!((got.status, got.body), (status, body), "{file}");
        assert_eq!(stack.tokens().await.len() + usize::from(status == 200), before.len(), "{file}: the table");
        if status == 200 {
            let token = event["pathParameters"]["tokenId"].as_str().map_or_else(
                || event["rawPath"].as_str().unwrap().rsplit('/').next().unwrap().to_owned(),
                str::to_owned,
            );
            let again = stack.call(&event).await;
            assert_eq!((again.status, again.body), error(404, &format!("pat: {token} not found")), "{file}, again");
        }
    }
}
