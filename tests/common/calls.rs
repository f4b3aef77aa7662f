//! The DynamoDB calls the function makes, as IAM sees them: the test
//! proxies (`faults`) append each to `CALL_LOG` when it names a file (make
//! test sets it), for `tests/iam_policy.rs` to check against the template's
//! policy.

use std::collections::BTreeSet;

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
    /// The key cache's partition key (`source`) of the item the request
    /// reads or writes, if any (`dynamodb:LeadingKeys`).
    pub source: Option<String>,
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
            source: ["Key", "Item"].iter().find_map(|field| request[field]["source"]["S"].as_str()).map(str::to_owned),
        })
    }
}
