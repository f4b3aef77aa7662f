//! Logs, metrics and the audit trail: diagnostics at the level asked for,
//! records that no log setting drops (spec §8). Nothing here ever sees a
//! credential.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tracing::field::{Field, Visit};
use tracing::Level;
use tracing_subscriber::filter::{filter_fn, LevelFilter, Targets};
use tracing_subscriber::fmt::{self, format::Writer, time::FormatTime};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogSettings;
use crate::ids::{AccountId, TokenId, UserId};

const METRICS_NAMESPACE: &str = "NetBird/DeleteToken";
/// The metrics' one dimension: the function's name, so that two stacks in
/// one account and region never write the same series.
pub const DIMENSION: &str = "FunctionName";
/// Its value where Lambda sets no `AWS_LAMBDA_FUNCTION_NAME`.
pub const UNNAMED: &str = "delete-token";

/// A CloudWatch metric the function emits: in [`METRICS_NAMESPACE`], with
/// [`DIMENSION`] only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
}

const fn metric(name: &'static str, unit: &'static str) -> Metric {
    Metric { name, unit }
}

/// The metrics of every request line: its outcome as counts, and its
/// duration. The outcome itself is a log field (Logs Insights counts it per
/// outcome at no metric cost): as a dimension it would make every outcome
/// that occurs six more metrics.
pub const REQUEST_METRICS: [Metric; 6] = [
    metric("Requests", "Count"),
    metric("Deleted", "Count"),
    metric("Refused", "Count"),
    metric("InternalErrors", "Count"),
    metric("RateLimited", "Count"),
    metric("Duration", "Milliseconds"),
];

/// The metrics of a failed refresh of the identity provider's keys; one
/// that ran out of its time reports [`KEYS_STALE`] alone.
pub const KEY_REFRESH_METRICS: [Metric; 2] = [metric("KeyRefreshFailures", "Count"), KEYS_STALE];
const KEYS_STALE: Metric = metric("KeysStale", "Seconds");

/// Lambda's application log levels, least severe first.
const LAMBDA_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
/// Levels as indexes into [`LAMBDA_LEVELS`].
const INFO: usize = 2;
const WARN: usize = 3;
const ERROR: usize = 4;

/// The least severe `level` a record may carry and still be kept by
/// Lambda's filter (an index into [`LAMBDA_LEVELS`]); INFO until init
/// says otherwise.
static RECORD_FLOOR: OnceLock<usize> = OnceLock::new();
/// The value of [`DIMENSION`], set at init.
static FUNCTION_NAME: OnceLock<String> = OnceLock::new();

/// The diagnostics' level when neither Lambda nor `RUST_LOG` asks for one.
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::INFO;

/// Target of the events that are records: their message is the whole line.
const RECORD_TARGET: &str = "record";

/// Text logs, or JSON when Lambda's advanced logging asks for it; the
/// diagnostics' level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`; records
/// always.
pub fn init_logging(settings: &LogSettings) {
    let _ = RECORD_FLOOR.set(record_floor(settings));
    let _ = FUNCTION_NAME.set(settings.function_name.clone().unwrap_or_else(|| UNNAMED.into()));
    let wanted = settings.lambda_level.as_deref().or(settings.rust_log.as_deref()).unwrap_or_default();
    let filter = log_filter(wanted);
    let not_records = filter_fn(|meta| meta.target() != RECORD_TARGET);
    let base = fmt::layer().with_target(false).with_ansi(false);
    let logs = if settings.json {
        base.json().flatten_event(true).boxed()
    } else {
        // Lambda stamps text lines itself.
        base.without_time().boxed()
    };
    // Both layers filtered by target and level: every other callsite (the
    // SDK's and hyper's debug spans, say) is then disabled once, when first
    // seen, instead of being built and checked on every call.
    let records_only = Targets::new().with_target(RECORD_TARGET, LevelFilter::INFO);
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(not_records).with_filter(filter))
        .with(RecordLayer.with_filter(records_only))
        .try_init();
}

/// The level records must carry for Lambda to keep them: INFO, or
/// Lambda's application log level when higher. Lambda filters only JSON
/// logs; text lines are never dropped.
fn record_floor(settings: &LogSettings) -> usize {
    let lambda = settings
        .lambda_level
        .as_deref()
        .filter(|_| settings.json)
        .and_then(|asked| LAMBDA_LEVELS.iter().position(|level| level.eq_ignore_ascii_case(asked)));
    lambda.map_or(INFO, |asked| asked.max(INFO))
}

/// Log targets that may print credentials or rows at their lower levels:
/// the runtime logs each raw event (Authorization header and all) at
/// TRACE; the SDK and SigV4 log requests and responses with their bodies
/// (token hashes, token rows); the HTTP stack logs headers. None of them
/// ever logs below INFO, whatever is asked for.
const CAPPED_AT_INFO: [&str; 13] = [
    "lambda_runtime",
    "lambda_http",
    "aws_smithy",
    "aws_sdk",
    "aws_sigv4",
    "aws_runtime",
    "aws_config",
    "aws_credential_types",
    "hyper",
    "h2",
    "reqwest",
    "rustls",
    "tower",
];

/// `level` or `target=level,...` (Lambda's FATAL is ERROR here); unset or
/// unreadable means INFO. [`CAPPED_AT_INFO`] applies on top.
fn log_filter(wanted: &str) -> Targets {
    let mut asked = match wanted.trim() {
        "" => Targets::new(),
        wanted => wanted.to_lowercase().replace("fatal", "error").parse::<Targets>().unwrap_or_default(),
    };
    if asked.default_level().is_none() {
        asked = asked.with_default(DEFAULT_LEVEL);
    }
    let capped = |target: &str| CAPPED_AT_INFO.iter().any(|prefix| target.starts_with(prefix));
    let mut filter = Targets::new().with_default(asked.default_level().unwrap_or(DEFAULT_LEVEL));
    for (target, level) in asked.iter() {
        filter = filter.with_target(target, if capped(target) { level.min(LevelFilter::INFO) } else { level });
    }
    for prefix in CAPPED_AT_INFO {
        filter = filter.with_target(prefix, most_verbose(&asked, prefix).min(LevelFilter::INFO));
    }
    filter
}

/// The most verbose level `filter` enables for `target`.
fn most_verbose(filter: &Targets, target: &str) -> LevelFilter {
    [Level::TRACE, Level::DEBUG, Level::INFO, Level::WARN, Level::ERROR]
        .into_iter()
        .find(|level| filter.would_enable(target, level))
        .map_or(LevelFilter::OFF, LevelFilter::from_level)
}

/// Writes records as bare lines on stdout, where CloudWatch looks for EMF;
/// the log formatter would wrap them.
struct RecordLayer;

impl<S: tracing::Subscriber> Layer<S> for RecordLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        // Targets matches by prefix; only this exact target is a record.
        if event.metadata().target() != RECORD_TARGET {
            return;
        }
        let _ = writeln!(std::io::stdout().lock(), "{}", message_of(event));
    }
}

/// An event's message, as recorded.
fn message_of(event: &tracing::Event<'_>) -> String {
    struct Message(String);
    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }
    let mut message = Message(String::new());
    event.record(&mut message);
    message.0
}

/// Writes `fields` as one record, with a `timestamp` and a `level` at
/// least `floor` (an index into [`LAMBDA_LEVELS`]) that Lambda keeps.
fn record(floor: usize, fields: Value) {
    let mut line = Map::new();
    let mut timestamp = String::new();
    let _ = fmt::time::SystemTime.format_time(&mut Writer::new(&mut timestamp));
    line.insert("timestamp".into(), timestamp.into());
    let level = floor.max(*RECORD_FLOOR.get().unwrap_or(&INFO));
    line.insert("level".into(), LAMBDA_LEVELS[level.min(LAMBDA_LEVELS.len() - 1)].into());
    if let Value::Object(fields) = fields {
        line.extend(fields);
    }
    let line = Value::Object(line).to_string();
    tracing::info!(target: RECORD_TARGET, "{line}");
}

/// `fields` with their `metrics` in CloudWatch's Embedded Metric Format
/// at `now`, on this function's own series.
fn with_metrics(mut fields: Value, metrics: &[Metric], now: SystemTime) -> Value {
    let millis = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let declared: Vec<Value> = metrics.iter().map(|m| json!({ "Name": m.name, "Unit": m.unit })).collect();
    fields["_aws"] = json!({
        "Timestamp": millis,
        "CloudWatchMetrics": [{ "Namespace": METRICS_NAMESPACE, "Dimensions": [[DIMENSION]], "Metrics": declared }]
    });
    fields[DIMENSION] = FUNCTION_NAME.get().map_or(UNNAMED, String::as_str).into();
    fields
}

/// How one request ended, for its log line and its metrics.
pub struct RequestSummary<'a> {
    pub request_id: &'a str,
    pub outcome: &'a str,
    pub status: u16,
    /// Why, for a 500.
    pub cause: Option<&'static str>,
    /// Why, for a 401: the reason, and the credential's public values
    /// (spec §2) as an object, empty when there are none.
    pub refused: Option<(&'static str, Value)>,
    pub duration: Duration,
}

impl RequestSummary<'_> {
    /// One line per request: the access log and, in the same JSON
    /// document, its CloudWatch metrics.
    pub fn log(&self) {
        record(INFO, self.document(SystemTime::now()));
    }

    /// The request's fields and its [`REQUEST_METRICS`], in EMF.
    pub fn document(&self, now: SystemTime) -> Value {
        let duration_ms = self.duration.as_secs_f64() * 1000.0;
        let mut doc = json!({
            "message": "request",
            "request_id": self.request_id,
            "outcome": self.outcome,
            "status": self.status,
            "duration_ms": duration_ms,
            "Requests": 1,
            "Deleted": u8::from(self.status == 200),
            "Refused": u8::from((400..500).contains(&self.status)),
            "InternalErrors": u8::from(self.status >= 500),
            "RateLimited": u8::from(self.status == 429),
            "Duration": duration_ms,
        });
        if let Some(cause) = self.cause {
            doc["cause"] = cause.into();
        }
        if let Some((reason, shown)) = &self.refused {
            doc["reason"] = (*reason).into();
            if shown.as_object().is_some_and(|shown| !shown.is_empty()) {
                doc["credential"] = shown.clone();
            }
        }
        with_metrics(doc, &REQUEST_METRICS, now)
    }
}

/// A request's refresh of the identity provider's keys that did not
/// bring fresh ones: one record with the metrics the stale-keys alarm reads.
pub enum KeyRefreshRecord<'a> {
    /// The provider failed ([`KEY_REFRESH_METRICS`]).
    Failed {
        error: &'a str,
        /// The provider's configuration disagrees with the settings: no
        /// retry mends it.
        configuration: bool,
        /// How far past its lifetime the key set still served is: JWTs fail
        /// at 24 h (with no set at all, they already do).
        stale_for: Duration,
    },
    /// It did not finish within its slice of a request's time; the keys
    /// past their lifetime verified (`KeysStale` alone).
    OutOfTime { stale_for: Duration },
}

impl KeyRefreshRecord<'_> {
    pub fn log(&self) {
        let level = match self {
            KeyRefreshRecord::Failed { configuration: true, .. } => ERROR,
            _ => WARN,
        };
        record(level, self.document(SystemTime::now()));
    }

    pub fn document(&self, now: SystemTime) -> Value {
        match *self {
            KeyRefreshRecord::Failed { error, stale_for, .. } => with_metrics(
                json!({
                    "message": "refreshing the identity provider's keys failed",
                    "error": error,
                    "KeyRefreshFailures": 1,
                    "KeysStale": stale_for.as_secs(),
                }),
                &KEY_REFRESH_METRICS,
                now,
            ),
            KeyRefreshRecord::OutOfTime { stale_for } => with_metrics(
                json!({
                    "message": "the identity provider's keys past their lifetime verified: their refresh ran out of time",
                    "KeysStale": stale_for.as_secs(),
                }),
                &[KEYS_STALE],
                now,
            ),
        }
    }
}

/// How a delete that the audit trail records ended.
#[derive(Debug, Clone, Copy)]
pub enum AuditResult {
    Deleted,
    /// The table may have applied it; no answer said so (spec §7).
    Unknown,
}

/// NetBird's activity 42, as it stores the event (spec §8), and each
/// attempt whose outcome is unknown, with `result` telling them apart.
pub struct AuditEvent<'a> {
    pub result: AuditResult,
    pub initiator_id: &'a UserId,
    pub target_id: &'a UserId,
    pub account_id: &'a AccountId,
    pub token_id: &'a TokenId,
    pub token_name: &'a str,
    pub is_service_user: bool,
    pub user_name: &'a str,
}

impl AuditEvent<'_> {
    pub fn log(&self) {
        record(INFO, self.document());
    }

    pub fn document(&self) -> Value {
        let (result, message) = match self.result {
            AuditResult::Deleted => ("deleted", "personal access token deleted"),
            AuditResult::Unknown => ("unknown", "personal access token delete attempted; outcome unknown"),
        };
        json!({
            "message": message,
            "audit": true,
            "activity": 42,
            "activity_code": "personal.access.token.delete",
            "result": result,
            "initiator_id": self.initiator_id.as_str(),
            "target_id": self.target_id.as_str(),
            "account_id": self.account_id.as_str(),
            "token_id": self.token_id.as_str(),
            "meta.name": self.token_name,
            "meta.is_service_user": self.is_service_user,
            "meta.user_name": self.user_name,
        })
    }
}

/// Records as a test sees them: every record written while `run` runs on
/// this thread, parsed.
#[cfg(test)]
pub(crate) async fn records_of<F: std::future::Future>(run: F) -> (F::Output, Vec<Value>) {
    use std::sync::{Arc, Mutex};

    struct Collect(Arc<Mutex<Vec<Value>>>);
    impl<S: tracing::Subscriber> Layer<S> for Collect {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if event.metadata().target() == RECORD_TARGET {
                let line = serde_json::from_str(&message_of(event)).expect("a record is one JSON object");
                self.0.lock().unwrap().push(line);
            }
        }
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Collect(lines.clone()));
    let output = {
        let _default = tracing::subscriber::set_default(subscriber);
        run.await
    };
    let lines = lines.lock().unwrap().clone();
    (output, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: u16, cause: Option<&'static str>, refused: Option<(&'static str, Value)>) -> Value {
        let duration = Duration::from_millis(7);
        RequestSummary { request_id: "r1", outcome: "x", status, cause, refused, duration }
            .document(UNIX_EPOCH + Duration::from_secs(1))
    }

    #[test]
    fn emf_declares_every_metric_it_sets_on_the_functions_own_series() {
        let at = UNIX_EPOCH + Duration::from_secs(1);
        let stale_for = Duration::from_secs(90);
        let failed = KeyRefreshRecord::Failed { error: "down", configuration: false, stale_for }.document(at);
        let out_of_time = KeyRefreshRecord::OutOfTime { stale_for }.document(at);
        for (doc, metrics) in [
            (summary(200, None, None), &REQUEST_METRICS[..]),
            (failed, &KEY_REFRESH_METRICS[..]),
            (out_of_time, &[KEYS_STALE][..]),
        ] {
            assert_eq!(doc["_aws"]["Timestamp"], 1000);
            let declared = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(declared["Namespace"], METRICS_NAMESPACE);
            assert_eq!(declared["Dimensions"], json!([[DIMENSION]]));
            assert_eq!(doc[DIMENSION], UNNAMED, "the dimension's value is on the line");
            let names: Vec<&str> =
                declared["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
            assert_eq!(names, metrics.iter().map(|m| m.name).collect::<Vec<_>>());
            for name in names {
                assert!(doc[name].is_number(), "{name} declared but not set");
            }
            if let Some(stale) = doc.get("KeysStale") {
                assert_eq!(stale, 90);
            }
        }
    }

    #[test]
    fn a_request_line_counts_its_outcome_and_says_why() {
        let deleted = summary(200, None, None);
        assert_eq!((deleted["Deleted"].as_u64(), deleted["Refused"].as_u64()), (Some(1), Some(0)));
        assert_eq!((deleted["Duration"].as_f64(), deleted["duration_ms"].as_f64()), (Some(7.0), Some(7.0)));
        assert!(deleted.get("cause").is_none() && deleted.get("reason").is_none());
        let error = summary(500, Some("keys"), None);
        assert_eq!((error["InternalErrors"].as_u64(), error["cause"].as_str()), (Some(1), Some("keys")));
        let limited = summary(429, None, None);
        assert_eq!((limited["RateLimited"].as_u64(), limited["Refused"].as_u64()), (Some(1), Some(1)));
        let line = summary(401, None, Some(("jwt_wrong_issuer", json!({ "iss": "https://idp/" }))));
        assert_eq!(
            (line["reason"].as_str(), line["credential"]["iss"].as_str()),
            (Some("jwt_wrong_issuer"), Some("https://idp/"))
        );
        assert_eq!(line["RateLimited"].as_u64(), Some(0));
        assert!(summary(401, None, Some(("header_absent", json!({})))).get("credential").is_none(), "nothing to show");
    }

    #[test]
    fn records_carry_a_level_lambda_keeps() {
        let floor = |json, level: Option<&str>| {
            LAMBDA_LEVELS
                [record_floor(&LogSettings { json, lambda_level: level.map(str::to_owned), ..LogSettings::default() })]
        };
        assert_eq!(floor(true, None), "INFO");
        for (asked, kept) in [
            ("TRACE", "INFO"),
            ("debug", "INFO"),
            ("INFO", "INFO"),
            ("WARN", "WARN"),
            ("error", "ERROR"),
            ("FATAL", "FATAL"),
        ] {
            assert_eq!(floor(true, Some(asked)), kept, "{asked}");
            assert_eq!(floor(false, Some(asked)), "INFO", "text lines are never filtered by Lambda: {asked}");
        }
        assert_eq!(floor(true, Some("LOUD")), "INFO", "a level Lambda does not have");
    }

    #[test]
    fn log_levels() {
        let on = |wanted: &str, target: &str, level: Level| log_filter(wanted).would_enable(target, &level);
        assert!(on("", "netbird_delete_token", Level::INFO) && !on("", "netbird_delete_token", Level::DEBUG));
        assert!(!on("WARN", "netbird_delete_token", Level::INFO) && on("WARN", "x", Level::WARN));
        assert!(on("FATAL", "x", Level::ERROR) && !on("FATAL", "x", Level::WARN));
        assert!(on("debug", "netbird_delete_token", Level::DEBUG));
        assert!(on("nonsense!!", "x", Level::INFO));
        assert!(!on("ERROR", "lambda_runtime", Level::INFO));
        assert!(!on("WARN", "aws_smithy_runtime", Level::INFO), "a cap never raises a level");
        assert!(on("aws_smithy_runtime=debug", "aws_smithy_runtime", Level::INFO));
    }

    #[test]
    fn credentials_carrying_targets_never_go_below_info() {
        let targets = [
            "lambda_runtime::layers::api_response",
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_runtime_api::client::http",
            "aws_sigv4::http_request::sign",
            "aws_sdk_dynamodb::operation",
            "hyper_util::client::legacy::pool",
            "h2::codec::framed_write",
            "reqwest::connect",
            "rustls::client::hs",
        ];
        for wanted in [
            "TRACE",
            "debug",
            "lambda_runtime=trace",
            "aws_smithy_runtime=trace,aws_smithy_runtime::client=trace",
            "aws=trace,hyper=trace,h2::codec=trace",
            "trace,aws_sigv4::http_request=trace",
        ] {
            for target in targets {
                for (level, kept) in [(Level::TRACE, false), (Level::DEBUG, false), (Level::INFO, true)] {
                    assert_eq!(log_filter(wanted).would_enable(target, &level), kept, "{wanted}: {target} at {level}");
                }
            }
        }
    }
}
