//! The template's IAM policy matches what the function does: every DynamoDB call the rest of the test suite saw
//! the function make (recorded in `CALL_LOG` by the test proxies) is allowed by a statement of the function's
//! role, and every statement, action, attribute, key and `ReturnValues` the policy allows was used by some call.
//! A new call without a policy change, or a policy line nothing uses, fails.
//!
//! `make test` runs it after every other test; on its own it has no log.

#[path = "common/calls.rs"]
mod calls;

use std::collections::BTreeSet;

use calls::RecordedCall;
use serde_norway::Value;

/// One DynamoDB statement of the role, as far as the check needs it; a condition is `None` when absent.
#[derive(Debug)]
struct Statement {
    sid: String,
    actions: Vec<String>,
    /// The table's logical id, and the index when the resource is one.
    resource: (String, Option<String>),
    attributes: Option<BTreeSet<String>>,
    return_values: Option<BTreeSet<String>>,
    /// The `!Sub` patterns the template builds the leading key from, whichever the parameters choose.
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

/// Whether `key` is what `pattern` (`jwks ${AuthKeysLocation}`) makes for some parameter values, none of which
/// holds a space (the template's patterns refuse them).
fn made_by(pattern: &str, key: &str) -> bool {
    let mut pieces = pattern.split("${");
    let Some(mut rest) = pieces.next().and_then(|literal| key.strip_prefix(literal)) else { return false };
    for piece in pieces {
        let literal = piece.split_once('}').map_or("", |(_, literal)| literal);
        match if literal.is_empty() { Some(rest.len()) } else { rest.find(literal) } {
            Some(end) if end > 0 && !rest[..end].contains(' ') => rest = &rest[end + literal.len()..],
            _ => return false,
        }
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

/// The DynamoDB statements of the function's role. Its other statements must be the two Lambda makes calls
/// under for the function: its own log group's streams, and X-Ray only when tracing is on. A resource is read by
/// the names it mentions, whatever the intrinsic functions around them.
fn policy(template: &str) -> Vec<Statement> {
    let doc: Value = serde_norway::from_str(template).unwrap();
    let role = &doc["Resources"]["DeleteTokenFunctionRole"]["Properties"];
    assert!(role["ManagedPolicyArns"].is_null(), "no managed policy: the statements below are the whole role");
    let function = &doc["Resources"]["DeleteTokenFunction"]["Properties"];
    assert_eq!(format!("{:?}", function["Role"]).matches("DeleteTokenFunctionRole").count(), 1);
    assert!(function["Policies"].is_null(), "no policy SAM would add to");
    let log_group = format!("{:?}", function["LoggingConfig"]["LogGroup"]);
    let (mut statements, mut others) = (Vec::new(), 0);
    for policy in role["Policies"].as_sequence().expect("the role has inline policies") {
        for s in policy["PolicyDocument"]["Statement"].as_sequence().expect("statements") {
            // A conditional statement (`!If [condition, statement, !Ref AWS::NoValue]`) is judged as when its
            // condition holds.
            let (condition, s) = match s {
                Value::Tagged(tagged) if tagged.tag == "If" => (tagged.value[0].as_str(), &tagged.value[1]),
                s => (None, s),
            };
            assert_eq!(s["Effect"].as_str(), Some("Allow"));
            let (actions, text) = (strings(&s["Action"]), format!("{:?}", s["Resource"]));
            if !actions.iter().all(|a| a.starts_with("dynamodb:")) {
                others += 1;
                // The group the function logs to (its ARN covers its streams, no other group), or X-Ray.
                let logs = condition.is_none()
                    && actions == ["logs:CreateLogStream", "logs:PutLogEvents"]
                    && text.contains("DeleteTokenLogGroup")
                    && log_group.contains("DeleteTokenLogGroup");
                let traces = condition == Some("TracingOn")
                    && actions == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
                    && text.contains("\"*\"");
                assert!(logs || traces, "{condition:?} {actions:?} {text}");
                continue;
            }
            let (_, table) =
                TABLES.iter().find(|(_, id)| text.contains(id)).unwrap_or_else(|| panic!("no table: {text}"));
            let all = &s["Condition"]["ForAllValues:StringEquals"];
            let set = |value: &Value| (!value.is_null()).then(|| strings(value).into_iter().collect());
            let keys = &all["dynamodb:LeadingKeys"];
            let index = text.contains("/index/hashedToken-index").then(|| "hashedToken-index".to_owned());
            statements.push(Statement {
                sid: s["Sid"].as_str().unwrap_or_default().to_owned(),
                actions,
                resource: (table.to_string(), index),
                attributes: set(&all["dynamodb:Attributes"]),
                return_values: set(&s["Condition"]["StringEqualsIfExists"]["dynamodb:ReturnValues"]),
                leading_keys: (!keys.is_null()).then(|| sub_patterns(keys)),
            });
        }
    }
    assert_eq!(others, 2, "the log and trace statements");
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
    let refused = calls.iter().filter(|call| !statements.iter().any(|s| allows(s, call)));
    let mut problems: Vec<String> = refused.map(|call| format!("refused by the policy: {call:?}")).collect();
    for s in statements {
        let mut unused = |what: String, used: &dyn Fn(&RecordedCall) -> bool| {
            if !calls.iter().any(|c| allows(s, c) && used(c)) {
                problems.push(format!("{}: {what} is allowed and never used", s.sid));
            }
        };
        for action in &s.actions {
            unused(action.clone(), &|c| format!("dynamodb:{}", c.operation) == *action);
        }
        for attribute in s.attributes.iter().flatten() {
            unused(format!("attribute {attribute}"), &|c| c.attributes.contains(attribute));
        }
        for value in s.return_values.iter().flatten() {
            unused(format!("ReturnValues {value}"), &|c| c.return_values == *value);
        }
        for pattern in s.leading_keys.iter().flatten() {
            unused(format!("key {pattern}"), &|c| c.source.as_ref().is_some_and(|key| made_by(pattern, key)));
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
    let calls: BTreeSet<RecordedCall> =
        log.lines().map(|line| serde_json::from_str(line).unwrap()).filter(|c| resource_of(c).is_some()).collect();
    assert!(calls.len() >= 4, "too few calls were recorded to judge the policy: {calls:#?}");
    let problems = mismatches(&policy(&template()), &calls);
    assert!(problems.is_empty(), "{problems:#?}\nrecorded: {calls:#?}");
}

/// The check itself can fail: a write the function never makes (its own hash rewritten) is refused, and a policy
/// line for it is reported unused.
#[test]
fn the_check_refuses_a_write_outside_the_policy() {
    let statements = policy(&template());
    let allowed = |call: &RecordedCall| statements.iter().any(|s| allows(s, call));
    let call = |operation: &str, table: &str, attributes: &[&str], source: Option<&str>| RecordedCall {
        operation: operation.into(),
        table: table.into(),
        index: None,
        attributes: attributes.iter().map(|a| a.to_string()).collect(),
        return_values: "NONE".into(),
        source: source.map(Into::into),
    };
    let mint = call("UpdateItem", "tokens-x", &["userId", "tokenId", "hashedToken"], None);
    assert!(!allowed(&mint), "rewriting hashedToken is refused");
    let cache = |source| call("PutItem", "keys-x", &["source", "keySet", "fetchedAt", "maxAge"], Some(source));
    let own = "oidc https://idp.example/.well-known/openid-configuration https://idp.example/";
    assert!(allowed(&cache(own)), "its own key source's item");
    for foreign in ["another stack's item", "oidc https://idp.example/ x y", ""] {
        assert!(!allowed(&cache(foreign)), "{foreign:?} is refused");
    }
    assert!(made_by("jwks ${AuthKeysLocation}", "jwks https://idp.example/keys"));
    assert!(!made_by("jwks ${AuthKeysLocation}", "jwks "));
    assert!(!made_by("jwks ${AuthKeysLocation}", "oidc https://idp.example/keys"));
    let put = call("PutItem", "tokens-x", &["userId", "tokenId"], None);
    let problems = mismatches(&statements, &BTreeSet::from([mint, put]));
    assert!(problems.iter().any(|p| p.contains("refused by the policy") && p.contains("hashedToken")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("dynamodb:Query is allowed and never used")), "{problems:#?}");
}

/// The recorder reads a request as IAM does: every attribute it names, in its key and its expressions, and the
/// partition key it touches.
#[test]
fn a_request_is_recorded_as_iam_reads_it() {
    let body = br##"{"TableName":"keys-1","Key":{"source":{"S":"jwks https://idp.example/keys"}},
        "UpdateExpression":"SET #a = :v","ExpressionAttributeNames":{"#a":"keySet"},"ReturnValues":"ALL_OLD"}"##;
    let call = RecordedCall::of("UpdateItem", body).unwrap();
    let attributes = BTreeSet::from(["keySet".to_owned(), "source".to_owned()]);
    assert_eq!(
        (call.table.as_str(), &call.attributes, call.return_values.as_str(), call.source.as_deref()),
        ("keys-1", &attributes, "ALL_OLD", Some("jwks https://idp.example/keys"))
    );
    assert_eq!(RecordedCall::of("GetItem", b"not json"), None);
}
