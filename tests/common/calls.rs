//! The DynamoDB calls the function makes, as IAM sees them: when
//! `CALL_LOG` names a file (make test sets it), every call that passes a
//! test proxy is appended to it, one JSON line each, for
//! `tests/iam_policy.rs` to check against the template's policy.

use std::collections::BTreeSet;
use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One call: what IAM's DynamoDB condition keys are evaluated on.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
pub struct RecordedCall {
    pub operation: String,
    pub table: String,
    pub index: Option<String>,
    /// Top-level attribute names the request names: its key or item, and
    /// every name of its expressions (`dynamodb:Attributes`).
    pub attributes: BTreeSet<String>,
    /// `ReturnValues`, `NONE` when not given (`dynamodb:ReturnValues`).
    pub return_values: String,
}

impl RecordedCall {
    pub fn of(operation: &str, body: &[u8]) -> Option<RecordedCall> {
        let request: Value = serde_json::from_slice(body).ok()?;
        let names = |field: &str| -> Vec<String> {
            request[field].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
        };
        let mut attributes: BTreeSet<String> = names("Key").into_iter().chain(names("Item")).collect();
        if let Some(aliases) = request["ExpressionAttributeNames"].as_object() {
            attributes.extend(aliases.values().filter_map(Value::as_str).map(str::to_owned));
        }
        Some(RecordedCall {
            operation: operation.to_owned(),
            table: request["TableName"].as_str()?.to_owned(),
            index: request["IndexName"].as_str().map(str::to_owned),
            attributes,
            return_values: request["ReturnValues"].as_str().unwrap_or("NONE").to_owned(),
        })
    }
}

/// Appends the call in `body` to `CALL_LOG`, if set.
pub fn record(operation: &str, body: &[u8]) {
    let Ok(path) = std::env::var("CALL_LOG") else { return };
    let Some(call) = RecordedCall::of(operation, body) else { return };
    let mut line = serde_json::to_string(&call).unwrap();
    line.push('\n');
    // One write per line, in append mode: lines of concurrent tests never mix.
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    file.write_all(line.as_bytes()).unwrap();
}
