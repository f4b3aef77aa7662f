//! The documents held to the code: where a table describes something the
//! code or the template defines, they must not differ. The README's status
//! table is the code's table of outcomes, its settings table every variable
//! the configuration reads, its parameters table the template's
//! parameters; docs/operations.md's metrics are those the function
//! declares, and the template's; docs/openapi.yaml answers as the status
//! table says. Every link between the documents leads somewhere, and the
//! rules never import what serves them.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use netbird_delete_token::config::{Config, LogSettings};
use netbird_delete_token::outcome::Outcome;
use netbird_delete_token::telemetry::{KEY_REFRESH_METRICS, REQUEST_METRICS};
use serde_norway::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The rows of the Markdown table in `document` whose header is `header`,
/// each cell trimmed, one surrounding pair of backticks removed.
fn table(document: &str, header: &[&str]) -> Vec<Vec<String>> {
    let cells = |line: &str| -> Vec<String> {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        inner
            .split('|')
            .map(|cell| {
                let cell = cell.trim();
                cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')).unwrap_or(cell).to_owned()
            })
            .collect()
    };
    let lines: Vec<&str> = document.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.starts_with('|') && cells(line) == header)
        .unwrap_or_else(|| panic!("no table with the header {header:?}"));
    lines[start + 2..].iter().take_while(|line| line.starts_with('|')).map(|line| cells(line)).collect()
}

#[test]
fn the_status_table_is_the_codes_table_of_outcomes() {
    let documented: BTreeSet<(String, String, String)> =
        table(&read("README.md"), &["status", "message", "outcome", "when"])
            .into_iter()
            .map(|row| (row[0].clone(), row[1].clone(), row[2].clone()))
            .collect();
    let code: BTreeSet<(String, String, String)> = Outcome::every()
        .iter()
        .map(|outcome| {
            let (status, name, message) = outcome.row();
            let message = match status.as_u16() {
                200 => "{}".to_owned(),
                204 => "(no body)".to_owned(),
                _ => message.into_owned(),
            };
            (status.as_u16().to_string(), message, name.to_owned())
        })
        .collect();
    assert_eq!(documented, code, "README status table (left) and Outcome::row (right)");
}

/// Every name `read` looks up: once with every setting given a valid value,
/// once with only those it requires (so a fallback read only when another
/// is unset is seen too).
fn names_read(read: impl Fn(&dyn Fn(&str) -> Option<String>)) -> BTreeSet<String> {
    const REQUIRED: [&str; 5] = ["TOKENS_TABLE", "USERS_TABLE", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS"];
    let asked = RefCell::new(BTreeSet::new());
    for sparse in [false, true] {
        let value = |name: &str| -> Option<String> {
            asked.borrow_mut().insert(name.to_owned());
            if sparse && !REQUIRED.contains(&name) {
                return None;
            }
            let value = match name {
                "AUTH_KEYS_LOCATION" | "AUTH_OIDC_CONFIG_ENDPOINT" => "https://idp.example/keys",
                "AUTH_JWKS" => r#"{"keys":[]}"#,
                "NB_API_RATE_LIMITING_ENABLED" => "true",
                "NB_API_RATE_LIMITING_RPM" | "NB_API_RATE_LIMITING_BURST" => "5",
                "AWS_ENDPOINT_URL_DYNAMODB" => "http://127.0.0.1:8000",
                _ => "value",
            };
            Some(value.to_owned())
        };
        read(&value);
    }
    asked.into_inner()
}

#[test]
fn the_settings_table_lists_every_variable_the_configuration_reads() {
    let mut documented: BTreeSet<String> =
        table(&read("README.md"), &["variable", "default", "meaning"]).into_iter().map(|row| row[0].clone()).collect();
    // Read by the SDK, and checked by `storage::client` (spec §6).
    assert!(documented.remove("AWS_ENDPOINT_URL_DYNAMODB"));
    let mut read_by_code = names_read(|lookup| {
        Config::from_lookup(lookup).expect("a valid configuration");
    });
    read_by_code.extend(names_read(|lookup| {
        LogSettings::from_lookup(lookup);
    }));
    assert_eq!(documented, read_by_code, "README settings table (left) and what the code reads (right)");
}

fn template() -> Value {
    serde_norway::from_str(&read("template.yaml")).unwrap()
}

#[test]
fn the_parameters_table_is_the_templates_parameters() {
    let documented: BTreeMap<String, String> = table(&read("README.md"), &["parameter", "default", "meaning"])
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let template = template();
    let parameters = template["Parameters"].as_mapping().expect("parameters");
    let defined: BTreeMap<String, String> = parameters
        .iter()
        .map(|(name, definition)| {
            let default = match &definition["Default"] {
                Value::Null => "(required)".to_owned(),
                Value::String(text) if text.is_empty() => "(empty)".to_owned(),
                Value::String(text) => text.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("{name:?}: a default of another kind: {other:?}"),
            };
            (name.as_str().unwrap().to_owned(), default)
        })
        .collect();
    assert_eq!(documented, defined, "README parameters table (left) and template.yaml (right)");
}

/// Every metric name the template reads in the function's namespace.
fn template_metrics(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(map) => {
            if map.get("Namespace").and_then(Value::as_str) == Some("NetBird/DeleteToken") {
                if let Some(name) = map.get("MetricName").and_then(Value::as_str) {
                    names.insert(name.to_owned());
                }
            }
            map.values().for_each(|v| template_metrics(v, names));
        }
        Value::Sequence(items) => items.iter().for_each(|v| template_metrics(v, names)),
        Value::Tagged(tagged) => template_metrics(&tagged.value, names),
        Value::String(text) => {
            // The dashboard's JSON: ["NetBird/DeleteToken", "<metric>", ...].
            for piece in text.split("[\"NetBird/DeleteToken\", \"").skip(1) {
                names.insert(piece.split('"').next().unwrap_or_default().to_owned());
            }
        }
        _ => {}
    }
}

#[test]
fn the_metrics_are_those_the_function_declares_and_the_template_reads_no_other() {
    let documented: BTreeSet<(String, String)> = table(&read("docs/operations.md"), &["metric", "unit", "meaning"])
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let declared: BTreeSet<(String, String)> =
        REQUEST_METRICS.iter().chain(&KEY_REFRESH_METRICS).map(|m| (m.name.to_owned(), m.unit.to_owned())).collect();
    assert_eq!(documented, declared, "docs/operations.md's metrics (left) and the function's (right)");
    let mut read_by_template = BTreeSet::new();
    template_metrics(&template(), &mut read_by_template);
    let names: BTreeSet<String> = declared.into_iter().map(|(name, _)| name).collect();
    assert!(read_by_template.contains("InternalErrors") && read_by_template.contains("KeysStale"));
    assert!(read_by_template.is_subset(&names), "the template reads metrics never emitted: {read_by_template:?}");
}

/// Whether `message` (the table's, `<id>` standing for any id) is `text`.
fn says(message: &str, text: &str) -> bool {
    let mut rest = text;
    let mut pieces = message.split('<');
    let first = pieces.next().unwrap_or_default();
    let Some(after) = rest.strip_prefix(first) else { return false };
    rest = after;
    for piece in pieces {
        let literal = piece.split_once('>').map_or("", |(_, literal)| literal);
        let end = if literal.is_empty() { rest.len() } else { rest.rfind(literal).unwrap_or(usize::MAX) };
        if end == usize::MAX || end == 0 {
            return false;
        }
        rest = &rest[end + literal.len()..];
    }
    rest.is_empty()
}

#[test]
fn the_openapi_document_answers_as_the_status_table_says() {
    let openapi: Value = serde_norway::from_str(&read("docs/openapi.yaml")).unwrap();
    let operations = &openapi["paths"]["/api/users/{userId}/tokens/{tokenId}"];
    let statuses = |method: &str| -> BTreeSet<u16> {
        operations[method]["responses"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().parse().unwrap())
            .collect()
    };
    let resolve = |response: &Value| -> Value {
        match response["$ref"].as_str() {
            Some(reference) => openapi["components"]["responses"][reference.rsplit('/').next().unwrap()].clone(),
            None => response.clone(),
        }
    };
    let rows = table(&read("README.md"), &["status", "message", "outcome", "when"]);
    // 204 is the preflight's; 405 answers the methods the document has no
    // operation for.
    let for_delete: BTreeSet<u16> =
        rows.iter().map(|row| row[0].parse().unwrap()).filter(|s| ![204, 405].contains(s)).collect();
    assert_eq!(statuses("delete"), for_delete);
    assert_eq!(statuses("options"), BTreeSet::from([204]));
    let mut examples: Vec<(u16, String)> = Vec::new();
    for status in for_delete.iter().filter(|s| **s >= 400) {
        let response = resolve(&operations["delete"]["responses"][status.to_string().as_str()]);
        assert!(response["headers"]["X-Request-Id"].is_mapping(), "{status} documents X-Request-Id");
        let found = response["content"]["application/json"]["examples"].as_mapping().unwrap();
        for example in found.values() {
            assert_eq!(example["value"]["code"].as_u64(), Some(u64::from(*status)));
            examples.push((*status, example["value"]["message"].as_str().unwrap().to_owned()));
        }
    }
    for row in rows.iter().filter(|row| row[0].parse::<u16>().is_ok_and(|s| s >= 400 && s != 405)) {
        let status: u16 = row[0].parse().unwrap();
        assert!(examples.iter().any(|(s, m)| *s == status && says(&row[1], m)), "{row:?} has no example");
    }
    for (status, message) in &examples {
        assert!(rows.iter().any(|row| row[0] == status.to_string() && says(&row[1], message)), "{status} {message}");
    }
    let version =
        read("Cargo.toml").lines().find_map(|l| l.strip_prefix("version = ")).unwrap().trim_matches('"').to_owned();
    assert_eq!(openapi["info"]["version"].as_str(), Some(version.as_str()), "one version");
}

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_link_between_the_documents_leads_somewhere() {
    let documents = ["README.md", "SECURITY.md", "CHANGELOG.md", "events/README.md"]
        .into_iter()
        .map(PathBuf::from)
        .chain(std::fs::read_dir(root().join("docs")).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(root()).map(Path::to_path_buf).unwrap_or(p));
    let mut checked = 0;
    for document in documents {
        let text = read(document.to_str().unwrap());
        assert!(!text.contains("../shared"), "{document:?} points outside the repository");
        for link in text.split("](").skip(1).map(|rest| rest.split(')').next().unwrap_or_default()) {
            if link.starts_with("http") || link.starts_with('#') || link.contains(' ') {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = document.parent().unwrap().join(path);
            let target_text = std::fs::read_to_string(root().join(&target))
                .unwrap_or_else(|_| panic!("{document:?} links to {link}, which is missing"));
            if !fragment.is_empty() {
                let anchors: Vec<String> = target_text
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .map(|l| anchor(l.trim_start_matches('#')))
                    .collect();
                assert!(anchors.iter().any(|a| a == fragment), "{document:?}: no heading #{fragment} in {path}");
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked} links checked");
}

#[test]
fn the_rules_never_import_what_serves_them() {
    for entry in std::fs::read_dir(root().join("src/domain")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for served_by in ["crate::storage", "crate::app", "crate::http", "crate::auth", "crate::telemetry"] {
            assert!(!text.contains(served_by), "{} imports {served_by}", path.display());
        }
    }
}

/// Rows of `table` whose first cell names `name` (backticks and a trailing
/// remark aside).
fn first_word(cell: &str) -> String {
    cell.split_whitespace().next().unwrap_or_default().trim_matches('`').to_owned()
}

#[test]
fn the_settings_tables_defaults_are_the_codes() {
    use netbird_delete_token::config::{ConfigError, DEFAULT_BURST, DEFAULT_RPM, DEFAULT_USER_ID_CLAIM};
    use netbird_delete_token::telemetry::{DEFAULT_LEVEL, UNNAMED};
    let format = if LogSettings::from_lookup(|_| None).json { "JSON" } else { "Text" };
    let code: BTreeMap<&str, String> = [
        ("AUTH_USER_ID_CLAIM", DEFAULT_USER_ID_CLAIM.to_owned()),
        ("NB_API_RATE_LIMITING_RPM", DEFAULT_RPM.to_string()),
        ("NB_API_RATE_LIMITING_BURST", DEFAULT_BURST.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", UNNAMED.to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", format.to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", DEFAULT_LEVEL.to_string().to_uppercase()),
        ("RUST_LOG", DEFAULT_LEVEL.to_string().to_lowercase()),
    ]
    .into();
    let all = [
        ("TOKENS_TABLE", "t"),
        ("USERS_TABLE", "u"),
        ("AUTH_ISSUER", "i"),
        ("AUTH_AUDIENCE", "a"),
        ("AUTH_JWKS", r#"{"keys":[]}"#),
        ("AUTH_KEYS_LOCATION", "https://idp.example/keys"),
        ("AUTH_OIDC_CONFIG_ENDPOINT", "https://idp.example/.well-known/openid-configuration"),
    ];
    let without = |name: &str| {
        Config::from_lookup(|n| all.iter().find(|(k, _)| *k == n && *k != name).map(|(_, v)| v.to_string()))
    };
    assert_eq!(without("").map(|c| c.rate_limit), Ok(None), "the rate limit is off unless set");
    for row in table(&read("README.md"), &["variable", "default", "meaning"]) {
        let (name, default) = (row[0].as_str(), row[1].as_str());
        match default {
            "(required)" => assert_eq!(without(name).err(), Some(ConfigError::Missing(leak(name))), "{name}"),
            "(none)" | "(AWS)" => assert!(!code.contains_key(name) && without(name).is_ok(), "{name}"),
            "false" => assert_eq!(name, "NB_API_RATE_LIMITING_ENABLED"),
            default => assert_eq!(code.get(name).map(String::as_str), Some(default), "{name}"),
        }
    }
}

fn leak(name: &str) -> &'static str {
    Box::leak(name.to_owned().into_boxed_str())
}

#[test]
fn the_parameters_tables_meanings_are_the_templates_descriptions() {
    let template = template();
    for row in table(&read("README.md"), &["parameter", "default", "meaning"]) {
        let description = template["Parameters"][row[0].as_str()]["Description"].as_str().unwrap_or_default();
        assert_eq!(row[2], description, "{}", row[0]);
    }
}

#[test]
fn every_reason_has_its_row_in_order_and_its_runbook_entry() {
    use netbird_delete_token::auth::reason::Reason;
    let spec: Vec<String> =
        table(&read("docs/spec.md"), &["reason", "when", "shown"]).into_iter().map(|r| r[0].clone()).collect();
    let code: Vec<String> = Reason::ALL.iter().map(|r| r.as_str().to_owned()).collect();
    assert_eq!(spec, code, "the spec's reasons (left), in the order they are checked (right)");
    let runbook: Vec<String> = table(&read("docs/operations.md"), &["reason", "likely cause", "fix"])
        .iter()
        .flat_map(|row| row[0].split(", ").map(|r| r.trim_matches('`').to_owned()).collect::<Vec<_>>())
        .collect();
    let mut sorted = runbook.clone();
    sorted.sort();
    let mut want = code.clone();
    want.sort();
    assert_eq!(sorted, want, "the runbook has one entry for each reason");
}

/// Whether `pattern` (`<...>` and `...` standing for any text) matches the
/// start of `text`.
fn begins(pattern: &str, text: &str) -> bool {
    let pattern = pattern.replace("...", "<>");
    let mut pieces = pattern.split('<');
    let Some(mut rest) = text.strip_prefix(pieces.next().unwrap_or_default()) else { return false };
    for piece in pieces {
        let literal = piece.split_once('>').map_or(piece, |(_, literal)| literal);
        match rest.find(literal) {
            Some(at) => rest = &rest[at + literal.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn the_spec_lists_every_way_init_can_stop() {
    use netbird_delete_token::config::ConfigError;
    let rows: Vec<String> =
        table(&read("docs/spec.md"), &["the line says", "when"]).into_iter().map(|r| r[0].clone()).collect();
    for error in ConfigError::every() {
        let text = error.to_string();
        let matching: Vec<&String> = rows.iter().filter(|row| begins(row, &text)).collect();
        assert_eq!(matching.len(), 1, "{text:?} matches {matching:?}");
    }
    assert_eq!(rows.len(), ConfigError::every().len(), "one row each");
}

#[test]
fn the_limits_table_is_the_codes() {
    use netbird_delete_token::auth::provider::{cache, discovery, fetch, refresh};
    use netbird_delete_token::{auth, deadline, http::lambda, ids, storage::client};
    use std::time::Duration;
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    let s = |d: Duration| format!("{} s", d.as_secs());
    let gaps = refresh::Gaps::default();
    assert_eq!(lambda::MAX_PATH_BYTES, lambda::MAX_BODY_BYTES, "one row says both");
    let code: Vec<(String, String)> = [
        ("answer margin: the request's deadline before Lambda's", ms(deadline::ANSWER_MARGIN)),
        ("minimum time left to start a call", ms(deadline::MIN_CALL_TIME)),
        ("last resort, before Lambda's deadline", ms(lambda::LAST_RESORT_MARGIN)),
        (
            "DynamoDB: connect, each attempt",
            format!("{}, {}", ms(client::CONNECT_TIMEOUT), ms(client::ATTEMPT_TIMEOUT)),
        ),
        (
            "DynamoDB: attempts (standard retries), and all of them",
            format!("{}, {}", client::MAX_ATTEMPTS, ms(client::OPERATION_TIMEOUT)),
        ),
        (
            "the provider: a document's time, and its size",
            format!("{}, {} MiB", ms(fetch::TIMEOUT), fetch::MAX_BYTES >> 20),
        ),
        ("a refresh for keys past their lifetime", ms(refresh::REFRESH_SLICE)),
        (
            "key set lifetime: least, most, without `max-age`",
            format!("{}, {}, {}", s(discovery::MIN_MAX_AGE), s(discovery::MAX_MAX_AGE), s(discovery::DEFAULT_MAX_AGE)),
        ),
        ("a set past its lifetime serves for", s(refresh::MAX_STALE)),
        (
            "gaps per instance: provider fetches, while no set is held, cache reads",
            format!("{}, {}, {}", s(gaps.refetch), s(gaps.retry), s(gaps.shared_read)),
        ),
        ("a cache entry believed up to, ahead of the clock", s(cache::MAX_CLOCK_SKEW)),
        ("JWT clock leeway (`exp`, `nbf`, `iat`)", format!("{} s", auth::jwt::LEEWAY_SECS)),
        ("keys one JWT is tried against", auth::keys::MAX_CANDIDATES.to_string()),
        ("credential", format!("{} bytes", auth::header::MAX_CREDENTIAL_LEN)),
        ("path, body", format!("{} bytes", lambda::MAX_PATH_BYTES)),
        ("id", format!("{} bytes", ids::MAX_ID_LEN)),
        (
            "a value shown beside a reason, and a list of them",
            format!("{} characters, {} members", auth::reason::MAX_CHARS, auth::reason::MAX_MEMBERS),
        ),
    ]
    .map(|(label, value)| (label.to_owned(), value))
    .into();
    let documented: Vec<(String, String)> =
        table(&read("docs/spec.md"), &["limit", "value"]).into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(documented, code);
}

#[test]
fn the_alarms_table_is_the_templates_alarms() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let rollback =
        format!("{:?}", template["Resources"]["DeleteTokenFunction"]["Properties"]["DeploymentPreference"]["Alarms"]);
    let mut alarms: BTreeMap<String, [String; 4]> = BTreeMap::new();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let id = id.as_str().unwrap().to_owned();
        let p = &resource["Properties"];
        let stats: Vec<&Value> = match p["Metrics"].as_sequence() {
            Some(metrics) => {
                metrics.iter().filter(|m| m["MetricStat"].is_mapping()).map(|m| &m["MetricStat"]).collect()
            }
            None => vec![p],
        };
        let metrics = stats
            .iter()
            .map(|s| s["Metric"]["MetricName"].as_str().or(s["MetricName"].as_str()).unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let period = stats[0]["Period"].as_u64().unwrap();
        let operator = if p["ComparisonOperator"].as_str() == Some("GreaterThanThreshold") { ">" } else { "≥" };
        let threshold = match &p["Threshold"] {
            Value::Tagged(reference) => format!("`{}`", reference.value.as_str().unwrap()),
            value => format!("{}", value.as_u64().unwrap()),
        };
        let percent = format!("{:?}", p["Metrics"]).contains("100 *");
        let threshold = format!("{operator} {threshold}{}", if percent { " %" } else { "" });
        let rolls_back = if rollback.contains(&id) { "yes" } else { "no" };
        alarms.insert(id, [metrics, threshold, format!("{period} s"), rolls_back.to_owned()]);
    }
    let rows =
        table(&read("docs/operations.md"), &["alarm", "metric", "threshold", "period", "rolls back", "what to do"]);
    assert_eq!(rows.iter().map(|r| first_word(&r[0])).collect::<BTreeSet<_>>(), alarms.keys().cloned().collect());
    for row in rows {
        let [metrics, threshold, period, rolls_back] = &alarms[&first_word(&row[0])];
        for metric in metrics.split(' ') {
            assert!(row[1].contains(metric), "{}: {metric} in {}", row[0], row[1]);
        }
        assert_eq!((&row[2], &row[3], &row[4]), (threshold, period, rolls_back), "{}", row[0]);
    }
}

#[test]
fn the_dashboard_and_the_saved_queries_are_the_templates() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let body = format!("{:?}", template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    let widgets: BTreeSet<String> =
        body.split("\\\"title\\\": \\\"").skip(1).map(|t| t.split("\\\"").next().unwrap().to_owned()).collect();
    let operations = read("docs/operations.md").replace('\n', " ");
    let listed = operations.split("Widgets: ").nth(1).unwrap().split(". ").next().unwrap().trim_end_matches('.');
    let documented: BTreeSet<String> = listed.split("; ").map(str::to_owned).collect();
    assert_eq!(documented, widgets);
    let queries: BTreeSet<String> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Logs::QueryDefinition"))
        .map(|r| sub_patterns_of(&r["Properties"]["Name"]).trim_start_matches("${AWS::StackName}/").to_owned())
        .collect();
    let documented: BTreeSet<String> =
        table(&read("docs/operations.md"), &["query", "lists"]).into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(documented, queries);
}

fn sub_patterns_of(value: &Value) -> String {
    match value {
        Value::Tagged(tagged) => tagged.value.as_str().unwrap_or_default().to_owned(),
        other => other.as_str().unwrap_or_default().to_owned(),
    }
}

#[test]
fn the_changelogs_newest_version_is_the_crates() {
    let version =
        read("Cargo.toml").lines().find_map(|l| l.strip_prefix("version = ")).unwrap().trim_matches('"').to_owned();
    let newest = read("CHANGELOG.md")
        .lines()
        .find_map(|l| l.strip_prefix("## "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(newest, version);
}

#[test]
fn the_development_pages_imports_table_is_the_codes() {
    let rows = table(&read("docs/development.md"), &["module", "does", "imports"]);
    for row in rows {
        let imports: BTreeSet<String> =
            row[2].split(", ").filter(|m| !m.is_empty()).map(|m| m.trim_matches('`').to_owned()).collect();
        for module in row[0].split(", ").map(|m| m.trim_matches('`')) {
            let files: Vec<PathBuf> = match std::fs::read_dir(root().join("src").join(module)) {
                Ok(dir) => dir
                    .map(|e| e.unwrap().path())
                    .flat_map(|p| {
                        if p.is_dir() {
                            std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect()
                        } else {
                            vec![p]
                        }
                    })
                    .collect(),
                Err(_) => vec![root().join("src").join(format!("{module}.rs"))],
            };
            let prefix = if module == "main" { "netbird_delete_token::" } else { "crate::" };
            let mut used = BTreeSet::new();
            for file in files.iter().filter(|f| !f.ends_with("memory.rs")) {
                let text = std::fs::read_to_string(file).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                for found in code.split(prefix).skip(1) {
                    let name: String = found.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if name != module && !name.is_empty() {
                        used.insert(name);
                    }
                }
            }
            assert_eq!(used, imports, "{module}");
        }
    }
}
