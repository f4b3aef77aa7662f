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
    let documented: BTreeSet<String> =
        table(&read("README.md"), &["variable", "default", "meaning"]).into_iter().map(|row| row[0].clone()).collect();
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
