//! The template's IAM policy matches what the function does: every
//! DynamoDB call the rest of the test suite saw the function make (recorded
//! in `CALL_LOG` by the test proxies) is allowed by a statement of the
//! function's policy, and every statement, action, attribute, key and
//! `ReturnValues` the policy allows was used by some call. A new call
//! without a policy change, or a policy line nothing uses, fails.
//!
//! `make test` runs it after every other test; on its own it has no log.

#[path = "common/calls.rs"]
mod calls;

use std::collections::BTreeSet;

use calls::RecordedCall;
use serde_norway::Value;

/// One statement of the function's policy, as far as the check needs it.
#[derive(Debug)]
struct Statement {
    sid: String,
    actions: Vec<String>,
    /// The table's logical id, and the index when the resource is one.
    resource: (String, Option<String>),
    /// `ForAllValues:StringEquals` on `dynamodb:Attributes`, if any.
    attributes: Option<BTreeSet<String>>,
    /// `StringEqualsIfExists` on `dynamodb:ReturnValues`, if any.
    return_values: Option<BTreeSet<String>>,
    /// `ForAllValues:StringEquals` on `dynamodb:LeadingKeys`, if any: the
    /// `!Sub` patterns the template builds the key from, whichever the
    /// parameters choose.
    leading_keys: Option<Vec<String>>,
}

const TABLES: [(&str, &str); 3] = [("tokens-", "TokensTable"), ("users-", "UsersTable"), ("keys-", "KeyCacheTable")];

/// Every `!Sub` pattern within `value`, whatever conditions surround them.
fn sub_patterns(value: &Value) -> Vec<String> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str().map(str::to_owned).into_iter().collect(),
        Value::Tagged(tagged) => sub_patterns(&tagged.value),
        Value::Sequence(items) => items.iter().flat_map(sub_patterns).collect(),
        _ => Vec::new(),
    }
}

/// Whether `key` is what `pattern` (`jwks ${AuthKeysLocation}`) makes for
/// some parameter values, none of which holds a space (the template's
/// patterns refuse them).
fn made_by(pattern: &str, key: &str) -> bool {
    let mut pieces = pattern.split("${");
    let mut rest = match pieces.next() {
        Some(literal) => match key.strip_prefix(literal) {
            Some(rest) => rest,
            None => return false,
        },
        None => return false,
    };
    for piece in pieces {
        let literal = piece.split_once('}').map_or("", |(_, literal)| literal);
        let end = if literal.is_empty() { rest.len() } else { rest.find(literal).unwrap_or(usize::MAX) };
        if end == usize::MAX || end == 0 || rest[..end].contains(' ') {
            return false;
        }
        rest = &rest[end + literal.len()..];
    }
    rest.is_empty()
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// The DynamoDB statements of the function's role. Its other statements
/// must be the two Lambda makes calls under for the function: its own log
/// group's streams, and X-Ray only when tracing is on. A resource is read by
/// the names it mentions, whatever the intrinsic functions around them.
fn policy(template: &str) -> Vec<Statement> {
    let doc: Value = serde_norway::from_str(template).unwrap();
    let resources = &doc["Resources"];
    let role = &resources["DeleteTokenFunctionRole"]["Properties"];
    assert!(role["ManagedPolicyArns"].is_null(), "no managed policy: the statements below are the whole role");
    let function = &resources["DeleteTokenFunction"]["Properties"];
    assert_eq!(format!("{:?}", function["Role"]).matches("DeleteTokenFunctionRole").count(), 1);
    assert!(function["Policies"].is_null(), "no policy SAM would add to");
    let log_group = format!("{:?}", function["LoggingConfig"]["LogGroup"]);
    let mut statements = Vec::new();
    let mut others = Vec::new();
    for policy in role["Policies"].as_sequence().expect("the role has inline policies") {
        for s in policy["PolicyDocument"]["Statement"].as_sequence().expect("statements") {
            // A conditional statement (`!If [condition, statement, !Ref
            // AWS::NoValue]`) is judged as when its condition holds.
            let (condition, s) = match s {
                Value::Tagged(tagged) if tagged.tag == "If" => (tagged.value[0].as_str(), &tagged.value[1]),
                s => (None, s),
            };
            assert_eq!(s["Effect"].as_str(), Some("Allow"));
            let actions = strings(&s["Action"]);
            if !actions.iter().all(|a| a.starts_with("dynamodb:")) {
                others.push((condition, actions, format!("{:?}", s["Resource"])));
                continue;
            }
            let text = format!("{:?}", s["Resource"]);
            let table = TABLES
                .iter()
                .map(|(_, id)| *id)
                .find(|id| text.contains(id))
                .unwrap_or_else(|| panic!("a resource that names no table: {text}"));
            let index = text.contains("/index/hashedToken-index").then(|| "hashedToken-index".to_owned());
            let condition = &s["Condition"];
            let set = |value: &Value| -> Option<BTreeSet<String>> {
                (!value.is_null()).then(|| strings(value).into_iter().collect())
            };
            statements.push(Statement {
                sid: s["Sid"].as_str().unwrap_or_default().to_owned(),
                actions: strings(&s["Action"]),
                resource: (table.to_owned(), index),
                attributes: set(&condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]),
                return_values: set(&condition["StringEqualsIfExists"]["dynamodb:ReturnValues"]),
                leading_keys: {
                    let keys = &condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"];
                    (!keys.is_null()).then(|| sub_patterns(keys))
                },
            });
        }
    }
    let logs = vec!["logs:CreateLogStream".to_owned(), "logs:PutLogEvents".to_owned()];
    let traces = vec!["xray:PutTraceSegments".to_owned(), "xray:PutTelemetryRecords".to_owned()];
    assert_eq!(others.len(), 2, "{others:?}");
    for (condition, actions, resource) in others {
        match condition {
            // The group the function logs to: its ARN covers its streams, no other group.
            None => assert!(
                actions == logs
                    && resource.contains("DeleteTokenLogGroup")
                    && log_group.contains("DeleteTokenLogGroup"),
                "{resource}"
            ),
            Some(condition) => {
                assert!(condition == "TracingOn" && actions == traces && resource.contains("\"*\""), "{resource}")
            }
        }
    }
    statements
}

fn resource_of(call: &RecordedCall) -> Option<(String, Option<String>)> {
    let (_, id) = TABLES.iter().find(|(prefix, _)| call.table.starts_with(prefix))?;
    Some((id.to_string(), call.index.clone()))
}

fn allows(statement: &Statement, call: &RecordedCall) -> bool {
    statement.actions.contains(&format!("dynamodb:{}", call.operation))
        && resource_of(call).as_ref() == Some(&statement.resource)
        && statement.attributes.as_ref().is_none_or(|allowed| call.attributes.is_subset(allowed))
        && statement.return_values.as_ref().is_none_or(|allowed| allowed.contains(&call.return_values))
        && statement
            .leading_keys
            .as_ref()
            .is_none_or(|patterns| call.source.as_ref().is_some_and(|key| patterns.iter().any(|p| made_by(p, key))))
}

/// What the policy allows that no call used, and the calls it refuses.
fn mismatches(statements: &[Statement], calls: &BTreeSet<RecordedCall>) -> Vec<String> {
    let mut problems = Vec::new();
    for call in calls {
        if !statements.iter().any(|s| allows(s, call)) {
            problems.push(format!("refused by the policy: {call:?}"));
        }
    }
    for statement in statements {
        let used: Vec<&RecordedCall> = calls.iter().filter(|c| allows(statement, c)).collect();
        for action in &statement.actions {
            if !used.iter().any(|c| format!("dynamodb:{}", c.operation) == *action) {
                problems.push(format!("{}: {action} is allowed and never used", statement.sid));
            }
        }
        let written: BTreeSet<&String> = used.iter().flat_map(|c| &c.attributes).collect();
        for attribute in statement.attributes.iter().flatten() {
            if !written.contains(attribute) {
                problems.push(format!("{}: attribute {attribute} is allowed and never used", statement.sid));
            }
        }
        for value in statement.return_values.iter().flatten() {
            if !used.iter().any(|c| c.return_values == *value) {
                problems.push(format!("{}: ReturnValues {value} is allowed and never used", statement.sid));
            }
        }
        for pattern in statement.leading_keys.iter().flatten() {
            if !used.iter().any(|c| c.source.as_ref().is_some_and(|key| made_by(pattern, key))) {
                problems.push(format!("{}: key {pattern} is allowed and never used", statement.sid));
            }
        }
    }
    problems
}

fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap()
}

#[test]
fn the_template_policy_allows_exactly_the_calls_the_suite_made() {
    let path = std::env::var("CALL_LOG").expect("CALL_LOG is not set: run this through `make test`");
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}: run through `make test`"));
    let calls: BTreeSet<RecordedCall> = log
        .lines()
        .map(|line| serde_json::from_str::<RecordedCall>(line).unwrap())
        .filter(|call| resource_of(call).is_some())
        .collect();
    assert!(calls.len() >= 4, "too few calls were recorded to judge the policy: {calls:#?}");
    let problems = mismatches(&policy(&template()), &calls);
    assert!(problems.is_empty(), "{problems:#?}\nrecorded: {calls:#?}");
}

/// The check itself can fail: a write the function never makes (its own
/// hash rewritten) is refused, and a policy line for it is reported unused.
#[test]
fn the_check_refuses_a_write_outside_the_policy() {
    let statements = policy(&template());
    let call = |operation: &str, attributes: &[&str]| RecordedCall {
        operation: operation.into(),
        table: "tokens-x".into(),
        index: None,
        attributes: attributes.iter().map(|a| a.to_string()).collect(),
        return_values: "NONE".into(),
        source: None,
    };
    let mint = call("UpdateItem", &["userId", "tokenId", "hashedToken"]);
    assert!(!statements.iter().any(|s| allows(s, &mint)), "rewriting hashedToken is refused");
    let cache = |source: &str| RecordedCall {
        operation: "PutItem".into(),
        table: "keys-x".into(),
        index: None,
        attributes: ["source", "keySet", "fetchedAt", "maxAge"].iter().map(|a| a.to_string()).collect(),
        return_values: "NONE".into(),
        source: Some(source.into()),
    };
    let own = "oidc https://idp.example/.well-known/openid-configuration https://idp.example/";
    assert!(statements.iter().any(|s| allows(s, &cache(own))), "its own key source's item");
    for foreign in ["another stack's item", "oidc https://idp.example/ x y", ""] {
        assert!(!statements.iter().any(|s| allows(s, &cache(foreign))), "{foreign:?} is refused");
    }
    assert!(made_by("jwks ${AuthKeysLocation}", "jwks https://idp.example/keys"));
    assert!(!made_by("jwks ${AuthKeysLocation}", "jwks "));
    assert!(!made_by("jwks ${AuthKeysLocation}", "oidc https://idp.example/keys"));
    let problems = mismatches(&statements, &BTreeSet::from([mint, call("PutItem", &["userId", "tokenId"])]));
    assert!(problems.iter().any(|p| p.contains("refused by the policy") && p.contains("hashedToken")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("dynamodb:Query is allowed and never used")), "{problems:#?}");
}

/// The recorder reads a request as IAM does: every attribute it names, in
/// its key and its expressions, and the partition key it touches.
#[test]
fn a_request_is_recorded_as_iam_reads_it() {
    let body = br##"{"TableName":"keys-1","Key":{"source":{"S":"jwks https://idp.example/keys"}},
        "UpdateExpression":"SET #a = :v","ExpressionAttributeNames":{"#a":"keySet"},"ReturnValues":"ALL_OLD"}"##;
    let call = RecordedCall::of("UpdateItem", body).unwrap();
    assert_eq!(call.table, "keys-1");
    assert_eq!(call.attributes, BTreeSet::from(["keySet".to_owned(), "source".to_owned()]));
    assert_eq!(
        (call.return_values.as_str(), call.source.as_deref()),
        ("ALL_OLD", Some("jwks https://idp.example/keys"))
    );
    assert_eq!(RecordedCall::of("GetItem", b"not json"), None);
}
