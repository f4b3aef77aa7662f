//! The documents held to the code: where a document describes what the code or the template defines (a table,
//! a list, a link, a version), they must not differ. Each test names the fact it holds.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use netbird_delete_token::config::{Config, ConfigError, LogSettings};
use netbird_delete_token::outcome::{Cause, Outcome};
use netbird_delete_token::telemetry::{KEY_REFRESH_METRICS, REQUEST_METRICS};
use serde_norway::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: impl AsRef<Path>) -> String {
    let path = Path::new(ROOT).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn entries(dir: impl AsRef<Path>) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap().map(|e| e.unwrap().path())
}

fn template() -> Value {
    serde_norway::from_str(&read("template.yaml")).unwrap()
}

/// The rows of the Markdown table in the document at `path` whose header is
/// `header`, each cell trimmed, one surrounding pair of backticks removed.
fn table(path: &str, header: &[&str]) -> Vec<Vec<String>> {
    let unquote = |cell: &str| cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')).unwrap_or(cell).to_owned();
    let cells = |line: &str| -> Vec<String> {
        line.trim().trim_start_matches('|').trim_end_matches('|').split('|').map(|cell| unquote(cell.trim())).collect()
    };
    let document = read(path);
    let mut lines = document.lines().skip_while(|line| !(line.starts_with('|') && cells(line) == header));
    lines.nth(1).unwrap_or_else(|| panic!("{path}: no table with the header {header:?}"));
    lines.take_while(|line| line.starts_with('|')).map(&cells).collect()
}

/// The table under `header` in `path`, each row mapped by `cells` and
/// collected as `code` is (a set, a map, or a list where order counts), is `code`.
fn holds<T, C: FromIterator<T> + PartialEq + Debug>(path: &str, header: &[&str], cells: fn(Vec<String>) -> T, code: C) {
    let documented: C = table(path, header).into_iter().map(cells).collect();
    assert_eq!(documented, code, "{path}'s table {header:?} (left) and the code's (right)");
}

/// The spec lists every `cause` a 500's line may name, and the runbook
/// says what to do about each.
#[test]
fn every_cause_of_a_500_is_in_the_spec_and_the_runbook() {
    let causes: Vec<String> = Cause::ALL.iter().map(|c| format!("`{}`", c.as_str())).collect();
    assert!(read("docs/spec.md").contains(&format!("`cause`\n({})", causes.join(", "))), "spec §4: {causes:?}");
    let header = ["alarm", "metric", "threshold", "period", "rolls back", "what to do"];
    let runbook = &table("docs/operations.md", &header)[0];
    assert!(causes.iter().all(|c| runbook[5].contains(c.as_str())), "ErrorsAlarm's row: {causes:?}");
}

#[test]
fn the_status_table_is_the_codes_table_of_outcomes() {
    let mut code = BTreeSet::new();
    for outcome in Outcome::every() {
        let (status, name, message) = outcome.row();
        let message = match status.as_u16() {
            200 => "{}".to_owned(),
            204 => "(no body)".to_owned(),
            _ => message.into_owned(),
        };
        code.insert(vec![status.as_u16().to_string(), message, name.to_owned()]);
    }
    holds("README.md", &["status", "message", "outcome", "when"], |row| row[..3].to_vec(), code);
}

#[test]
fn the_settings_table_lists_every_variable_the_configuration_reads() {
    const REQUIRED: [&str; 5] = ["TOKENS_TABLE", "USERS_TABLE", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS"];
    let asked = RefCell::new(BTreeSet::new());
    // Every setting set, then only the required: a fallback read only when another is unset is seen too.
    for sparse in [false, true] {
        let value = |name: &str| -> Option<String> {
            asked.borrow_mut().insert(name.to_owned());
            let value = match name {
                "AUTH_KEYS_LOCATION" | "AUTH_OIDC_CONFIG_ENDPOINT" => "https://idp.example/keys",
                "AUTH_JWKS" => r#"{"keys":[]}"#,
                "NB_API_RATE_LIMITING_ENABLED" => "true",
                "NB_API_RATE_LIMITING_RPM" | "NB_API_RATE_LIMITING_BURST" => "5",
                "AWS_ENDPOINT_URL_DYNAMODB" => "http://127.0.0.1:8000",
                _ => "value",
            };
            (!sparse || REQUIRED.contains(&name)).then(|| value.to_owned())
        };
        Config::from_lookup(value).expect("a valid configuration");
        LogSettings::from_lookup(value);
    }
    let mut read_by_code = asked.into_inner();
    // Read by the SDK, and checked by `storage::client` (spec §6).
    assert!(read_by_code.insert("AWS_ENDPOINT_URL_DYNAMODB".to_owned()));
    holds("README.md", &["variable", "default", "meaning"], |row| row[0].clone(), read_by_code);
}

#[test]
fn the_parameters_table_is_the_templates_parameters() {
    let mut defined = BTreeMap::new();
    for (name, definition) in template()["Parameters"].as_mapping().expect("parameters") {
        let default = match &definition["Default"] {
            Value::Null => "(required)".to_owned(),
            Value::String(text) if text.is_empty() => "(empty)".to_owned(),
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("{name:?}: a default of another kind: {other:?}"),
        };
        defined.insert(name.as_str().unwrap().to_owned(), default);
    }
    holds("README.md", &["parameter", "default", "meaning"], |r| (r[0].clone(), r[1].clone()), defined);
}

/// Every metric name the template reads in the function's namespace.
fn template_metrics(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(map) => {
            let ours = map.get("Namespace").and_then(Value::as_str) == Some("NetBird/DeleteToken");
            names.extend(map.get("MetricName").and_then(Value::as_str).filter(|_| ours).map(str::to_owned));
            map.values().for_each(|v| template_metrics(v, names));
        }
        Value::Sequence(items) => items.iter().for_each(|v| template_metrics(v, names)),
        Value::Tagged(tagged) => template_metrics(&tagged.value, names),
        // The dashboard's JSON: ["NetBird/DeleteToken", "<metric>", ...].
        Value::String(text) => {
            for piece in text.split("[\"NetBird/DeleteToken\", \"").skip(1) {
                names.insert(piece.split('"').next().unwrap_or_default().to_owned());
            }
        }
        _ => {}
    }
}

#[test]
fn the_metrics_are_those_the_function_declares_and_the_template_reads_no_other() {
    let declared: BTreeSet<(String, String)> =
        REQUEST_METRICS.iter().chain(&KEY_REFRESH_METRICS).map(|m| (m.name.to_owned(), m.unit.to_owned())).collect();
    holds("docs/operations.md", &["metric", "unit", "meaning"], |r| (r[0].clone(), r[1].clone()), declared.clone());
    let mut read_by_template = BTreeSet::new();
    template_metrics(&template(), &mut read_by_template);
    assert!(read_by_template.contains("InternalErrors") && read_by_template.contains("KeysStale"));
    let emitted = |name: &String| declared.iter().any(|(declared, _)| declared == name);
    assert!(read_by_template.iter().all(emitted), "the template reads metrics never emitted: {read_by_template:?}");
}

/// Whether `message` (the table's, `<id>` standing for any id) is `text`.
fn says(message: &str, text: &str) -> bool {
    let mut pieces = message.split('<');
    let mut rest = text.strip_prefix(pieces.next().unwrap_or_default());
    for piece in pieces {
        let literal = piece.split_once('>').map_or("", |(_, literal)| literal);
        let end = |r: &str| if literal.is_empty() { Some(r.len()) } else { r.rfind(literal) };
        rest = rest.and_then(|r| end(r).filter(|end| *end > 0).map(|end| &r[end + literal.len()..]));
    }
    rest == Some("")
}

#[test]
fn the_openapi_document_answers_as_the_status_table_says() {
    let openapi: Value = serde_norway::from_str(&read("docs/openapi.yaml")).unwrap();
    let operations = &openapi["paths"]["/api/users/{userId}/tokens/{tokenId}"];
    let statuses = |method: &str| -> BTreeSet<u16> {
        let responses = operations[method]["responses"].as_mapping().unwrap();
        responses.keys().map(|k| k.as_str().unwrap().parse().unwrap()).collect()
    };
    let rows = table("README.md", &["status", "message", "outcome", "when"]);
    // 204 is the preflight's; 405 answers the methods the document has no operation for.
    let for_delete: BTreeSet<u16> =
        rows.iter().map(|row| row[0].parse().unwrap()).filter(|s| ![204, 405].contains(s)).collect();
    assert_eq!(statuses("delete"), for_delete);
    assert_eq!(statuses("options"), BTreeSet::from([204]));
    let mut examples: Vec<(u16, String)> = Vec::new();
    for status in for_delete.iter().filter(|s| **s >= 400) {
        let response = &operations["delete"]["responses"][status.to_string().as_str()];
        let response = response["$ref"]
            .as_str()
            .map_or(response, |reference| &openapi["components"]["responses"][reference.rsplit('/').next().unwrap()]);
        assert!(response["headers"]["X-Request-Id"].is_mapping(), "{status} documents X-Request-Id");
        for example in response["content"]["application/json"]["examples"].as_mapping().unwrap().values() {
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
    assert_eq!(openapi["info"]["version"].as_str(), Some(env!("CARGO_PKG_VERSION")), "one version");
}

#[test]
fn every_link_between_the_documents_leads_somewhere() {
    // GitHub's anchor of a heading: lowercase, spaces as hyphens, other punctuation dropped.
    let anchor = |heading: &str| {
        let mut anchor = heading.trim().to_lowercase().replace(' ', "-");
        anchor.retain(|c| c.is_alphanumeric() || "-_".contains(c));
        anchor
    };
    let documents = ["README.md", "SECURITY.md", "CHANGELOG.md", "events/README.md"].map(PathBuf::from).into_iter();
    let mut checked = 0;
    for document in documents.chain(entries("docs")).filter(|p| p.extension().is_some_and(|e| e == "md")) {
        let text = read(&document);
        assert!(!text.contains("../shared"), "{document:?} points outside the repository");
        let links = text.split("](").skip(1).map(|rest| rest.split(')').next().unwrap_or_default());
        for link in links.filter(|l| !(l.starts_with("http") || l.starts_with('#') || l.contains(' '))) {
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target_text = std::fs::read_to_string(Path::new(ROOT).join(document.parent().unwrap().join(path)))
                .unwrap_or_else(|_| panic!("{document:?} links to {link}, which is missing"));
            let mut headings = target_text.lines().filter_map(|l| l.strip_prefix('#'));
            let found = fragment.is_empty() || headings.any(|h| anchor(h.trim_start_matches('#')) == fragment);
            assert!(found, "{document:?}: no heading #{fragment} in {path}");
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked} links checked");
}

#[test]
fn the_rules_never_import_what_serves_them() {
    for path in entries("src/domain") {
        let text = read(&path);
        for served_by in ["crate::storage", "crate::app", "crate::http", "crate::auth", "crate::telemetry"] {
            assert!(!text.contains(served_by), "{} imports {served_by}", path.display());
        }
    }
}

#[test]
fn the_settings_tables_defaults_are_the_codes() {
    use netbird_delete_token::config::{DEFAULT_BURST, DEFAULT_RPM, DEFAULT_USER_ID_CLAIM};
    use netbird_delete_token::telemetry::{DEFAULT_LEVEL, UNNAMED};
    let code = BTreeMap::from([
        ("AUTH_USER_ID_CLAIM", DEFAULT_USER_ID_CLAIM.to_owned()),
        ("NB_API_RATE_LIMITING_RPM", DEFAULT_RPM.to_string()),
        ("NB_API_RATE_LIMITING_BURST", DEFAULT_BURST.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", UNNAMED.to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", (if LogSettings::from_lookup(|_| None).json { "JSON" } else { "Text" }).to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", DEFAULT_LEVEL.to_string().to_uppercase()),
        ("RUST_LOG", DEFAULT_LEVEL.to_string().to_lowercase()),
    ]);
    let all = BTreeMap::from([
        ("TOKENS_TABLE", "t"),
        ("USERS_TABLE", "u"),
        ("AUTH_ISSUER", "i"),
        ("AUTH_AUDIENCE", "a"),
        ("AUTH_JWKS", r#"{"keys":[]}"#),
        ("AUTH_KEYS_LOCATION", "https://idp.example/keys"),
        ("AUTH_OIDC_CONFIG_ENDPOINT", "https://idp.example/.well-known/openid-configuration"),
    ]);
    let without = |name: &str| Config::from_lookup(|n| all.get(n).filter(|_| n != name).map(|v| v.to_string()));
    assert_eq!(without("").map(|c| c.rate_limit), Ok(None), "the rate limit is off unless set");
    for row in table("README.md", &["variable", "default", "meaning"]) {
        let (name, default) = (row[0].as_str(), row[1].as_str());
        match default {
            "(required)" => assert!(matches!(without(name), Err(ConfigError::Missing(n)) if n == name), "{name}"),
            "(none)" | "(AWS)" => assert!(!code.contains_key(name) && without(name).is_ok(), "{name}"),
            "false" => assert_eq!(name, "NB_API_RATE_LIMITING_ENABLED"),
            default => assert_eq!(code.get(name).map(String::as_str), Some(default), "{name}"),
        }
    }
}

#[test]
fn the_parameters_tables_meanings_are_the_templates_descriptions() {
    let template = template();
    for row in table("README.md", &["parameter", "default", "meaning"]) {
        let description = template["Parameters"][row[0].as_str()]["Description"].as_str().unwrap_or_default();
        assert_eq!(row[2], description, "{}", row[0]);
    }
}

#[test]
fn every_reason_has_its_row_in_order_and_its_runbook_entry() {
    use netbird_delete_token::auth::reason::Reason;
    let mut code: Vec<String> = Reason::ALL.iter().map(|r| r.as_str().to_owned()).collect();
    // The spec's reasons, in the order they are checked.
    holds("docs/spec.md", &["reason", "when", "shown"], |row| row[0].clone(), code.clone());
    let rows = table("docs/operations.md", &["reason", "likely cause", "fix"]);
    let mut runbook: Vec<&str> = rows.iter().flat_map(|row| row[0].split(", ").map(|r| r.trim_matches('`'))).collect();
    runbook.sort();
    code.sort();
    assert_eq!(runbook, code, "the runbook has one entry for each reason");
}

/// Whether `pattern` (`<...>` and `...` standing for any text) matches the start of `text`.
fn begins(pattern: &str, text: &str) -> bool {
    let pattern = pattern.replace("...", "<>");
    let mut pieces = pattern.split('<');
    let mut rest = text.strip_prefix(pieces.next().unwrap_or_default());
    for piece in pieces {
        let literal = piece.split_once('>').map_or(piece, |(_, literal)| literal);
        rest = rest.and_then(|r| r.find(literal).map(|at| &r[at + literal.len()..]));
    }
    rest.is_some()
}

#[test]
fn the_spec_lists_every_way_init_can_stop() {
    let rows = table("docs/spec.md", &["the line says", "when"]);
    for error in ConfigError::every() {
        let text = error.to_string();
        let matching: Vec<&String> = rows.iter().map(|row| &row[0]).filter(|row| begins(row, &text)).collect();
        assert_eq!(matching.len(), 1, "{text:?} matches {matching:?}");
    }
    assert_eq!(rows.len(), ConfigError::every().len(), "one row each");
}

#[test]
fn the_limits_table_is_the_codes() {
    use netbird_delete_token::auth::provider::discovery::{DEFAULT_MAX_AGE, MAX_MAX_AGE, MIN_MAX_AGE};
    use netbird_delete_token::auth::provider::fetch::{MAX_BYTES, TIMEOUT};
    use netbird_delete_token::auth::provider::{cache, refresh};
    use netbird_delete_token::auth::reason::{MAX_CHARS, MAX_MEMBERS};
    use netbird_delete_token::{auth, deadline, http::lambda, ids, storage::client};
    use std::time::Duration;
    let ms = |ds: &[Duration]| ds.iter().map(|d| format!("{} ms", d.as_millis())).collect::<Vec<_>>().join(", ");
    let s = |ds: &[Duration]| ds.iter().map(|d| format!("{} s", d.as_secs())).collect::<Vec<_>>().join(", ");
    assert_eq!(lambda::MAX_PATH_BYTES, lambda::MAX_BODY_BYTES, "one row says both");
    let all_attempts = ms(&[client::OPERATION_TIMEOUT]);
    let code = [
        ("answer margin: the request's deadline before Lambda's", ms(&[deadline::ANSWER_MARGIN])),
        ("minimum time left to start a call", ms(&[deadline::MIN_CALL_TIME])),
        ("last resort, before Lambda's deadline", ms(&[lambda::LAST_RESORT_MARGIN])),
        ("DynamoDB: connect, each attempt", ms(&[client::CONNECT_TIMEOUT, client::ATTEMPT_TIMEOUT])),
        ("DynamoDB: attempts (standard retries), and all of them", format!("{}, {all_attempts}", client::MAX_ATTEMPTS)),
        ("the provider: a document's time, and its size", format!("{}, {} MiB", ms(&[TIMEOUT]), MAX_BYTES >> 20)),
        ("a refresh for keys past their lifetime", ms(&[refresh::REFRESH_SLICE])),
        ("key set lifetime: least, most, without `max-age`", s(&[MIN_MAX_AGE, MAX_MAX_AGE, DEFAULT_MAX_AGE])),
        ("a set past its lifetime serves for", s(&[refresh::MAX_STALE])),
        (
            "gaps per instance: provider fetches, while no set is held, cache reads",
            s(&[refresh::REFETCH_GAP, refresh::RETRY_GAP, refresh::SHARED_READ_GAP]),
        ),
        ("a cache entry believed up to, ahead of the clock", s(&[cache::MAX_CLOCK_SKEW])),
        ("JWT clock leeway (`exp`, `nbf`, `iat`)", format!("{} s", auth::jwt::LEEWAY_SECS)),
        ("keys one JWT is tried against", auth::keys::MAX_CANDIDATES.to_string()),
        ("credential", format!("{} bytes", auth::header::MAX_CREDENTIAL_LEN)),
        ("path, body", format!("{} bytes", lambda::MAX_PATH_BYTES)),
        ("id", format!("{} bytes", ids::MAX_ID_LEN)),
        ("a value shown beside a reason, and a list of them", format!("{MAX_CHARS} characters, {MAX_MEMBERS} members")),
    ]
    .map(|(label, value)| (label.to_owned(), value));
    holds("docs/spec.md", &["limit", "value"], |r| (r[0].clone(), r[1].clone()), code.to_vec());
}

#[test]
fn the_alarms_table_is_the_templates_alarms() {
    let template = template();
    let resources = &template["Resources"];
    let rollback = format!("{:?}", resources["DeleteTokenFunction"]["Properties"]["DeploymentPreference"]["Alarms"]);
    let mut alarms: BTreeMap<String, [String; 4]> = BTreeMap::new();
    let is_alarm = |(_, r): &(&Value, &Value)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm");
    for (id, resource) in resources.as_mapping().unwrap().iter().filter(is_alarm) {
        let (id, p) = (id.as_str().unwrap().to_owned(), &resource["Properties"]);
        let stats: Vec<&Value> = p["Metrics"].as_sequence().map_or(vec![p], |metrics| {
            metrics.iter().filter(|m| m["MetricStat"].is_mapping()).map(|m| &m["MetricStat"]).collect()
        });
        let names = stats.iter().map(|s| s["Metric"]["MetricName"].as_str().or(s["MetricName"].as_str()).unwrap());
        let metrics = names.collect::<Vec<_>>().join(" ");
        let period = stats[0]["Period"].as_u64().unwrap();
        let operator = if p["ComparisonOperator"].as_str() == Some("GreaterThanThreshold") { ">" } else { "≥" };
        let threshold = match &p["Threshold"] {
            Value::Tagged(reference) => format!("`{}`", reference.value.as_str().unwrap()),
            value => format!("{}", value.as_u64().unwrap()),
        };
        let percent = if format!("{:?}", p["Metrics"]).contains("100 *") { " %" } else { "" };
        let rolls_back = if rollback.contains(&id) { "yes" } else { "no" }.to_owned();
        alarms.insert(id, [metrics, format!("{operator} {threshold}{percent}"), format!("{period} s"), rolls_back]);
    }
    let rows = table("docs/operations.md", &["alarm", "metric", "threshold", "period", "rolls back", "what to do"]);
    let first_word = |cell: &str| cell.split_whitespace().next().unwrap_or_default().trim_matches('`').to_owned();
    let documented: BTreeSet<String> = rows.iter().map(|r| first_word(&r[0])).collect();
    assert_eq!(documented, alarms.keys().cloned().collect(), "docs/operations.md's alarms (left) and the template's");
    for row in rows {
        let [metrics, threshold, period, rolls_back] = &alarms[&first_word(&row[0])];
        assert!(metrics.split(' ').all(|metric| row[1].contains(metric)), "{}: {metrics} in {}", row[0], row[1]);
        assert_eq!((&row[2], &row[3], &row[4]), (threshold, period, rolls_back), "{}", row[0]);
    }
}

#[test]
fn the_dashboard_and_the_saved_queries_are_the_templates() {
    let template = template();
    let body = format!("{:?}", template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    let widgets: BTreeSet<String> =
        body.split("\\\"title\\\": \\\"").skip(1).map(|t| t.split("\\\"").next().unwrap().to_owned()).collect();
    let operations = read("docs/operations.md").replace('\n', " ");
    let listed = operations.split("Widgets: ").nth(1).unwrap().split(". ").next().unwrap().trim_end_matches('.');
    assert_eq!(listed.split("; ").map(str::to_owned).collect::<BTreeSet<_>>(), widgets, "docs/operations.md's widgets");
    let resources = template["Resources"].as_mapping().unwrap().values();
    let queries = resources.filter(|r| r["Type"].as_str() == Some("AWS::Logs::QueryDefinition"));
    let names = queries.map(|r| r["Properties"]["Name"].as_str().unwrap_or_default());
    let names: BTreeSet<String> = names.map(|name| name.trim_start_matches("${AWS::StackName}/").to_owned()).collect();
    holds("docs/operations.md", &["query", "lists"], |row| row[0].clone(), names);
}

#[test]
fn the_changelogs_newest_version_is_the_crates() {
    let changelog = read("CHANGELOG.md");
    let newest = changelog.lines().find_map(|l| l.strip_prefix("## ")).unwrap().split_whitespace().next();
    assert_eq!(newest, Some(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_development_pages_imports_table_is_the_codes() {
    let rows = table("docs/development.md", &["module", "does", "imports"]);
    let listed: BTreeSet<String> =
        rows.iter().flat_map(|r| r[0].split(", ").map(|m| m.trim_matches('`').into())).collect();
    let stem = |p: PathBuf| p.file_stem().unwrap().to_string_lossy().into_owned();
    // The crate's root, its binaries and the development keys are not layers.
    let modules: BTreeSet<String> =
        entries("src").map(stem).filter(|m| !["lib", "bin", "devkeys"].contains(&m.as_str())).collect();
    assert_eq!(listed, modules, "every module of src/ has its row in docs/development.md");
    for row in rows {
        let imports: BTreeSet<String> =
            row[2].split(", ").filter(|m| !m.is_empty()).map(|m| m.trim_matches('`').to_owned()).collect();
        for module in row[0].split(", ").map(|m| m.trim_matches('`')) {
            let dir = Path::new(ROOT).join("src").join(module);
            let files: Vec<PathBuf> = match dir.is_dir() {
                true => entries(dir).flat_map(|p| if p.is_dir() { entries(p).collect() } else { vec![p] }).collect(),
                false => vec![dir.with_extension("rs")],
            };
            let prefix = if module == "main" { "netbird_delete_token::" } else { "crate::" };
            let mut used = BTreeSet::new();
            for text in files.iter().filter(|f| !f.ends_with("memory.rs")).map(read) {
                for found in text.split("#[cfg(test)]").next().unwrap().split(prefix).skip(1) {
                    let name: String = found.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    used.extend((name != module && !name.is_empty()).then_some(name));
                }
            }
            assert_eq!(used, imports, "{module}: the code's imports (left) and docs/development.md's (right)");
        }
    }
}
