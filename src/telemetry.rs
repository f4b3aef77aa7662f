//! Logs, metrics and the audit trail. Nothing here ever sees a credential.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::ids::{AccountId, TokenId, UserId};
use tracing::field::{Field, Visit};
use tracing::Level;
use tracing_subscriber::filter::{filter_fn, LevelFilter, Targets};
use tracing_subscriber::fmt;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

const METRICS_NAMESPACE: &str = "NetBird/DeleteToken";

/// Text logs, or JSON when Lambda's advanced logging asks for it
/// (`AWS_LAMBDA_LOG_FORMAT=JSON`); level from `AWS_LAMBDA_LOG_LEVEL` or
/// `RUST_LOG`.
pub fn init_logging() {
    let wanted = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    let filter = log_filter(&wanted);
    let not_emf = filter_fn(|meta| meta.target() != EMF_TARGET);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let base = fmt::layer().with_target(false).with_ansi(false).without_time();
    let logs = if json { base.json().flatten_event(true).boxed() } else { base.boxed() };
    // Both layers filtered by target and level: every other callsite (the
    // SDK's and hyper's debug spans, say) is then disabled once, when first
    // seen, instead of being built and checked on every call.
    let emf_only = Targets::new().with_target(EMF_TARGET, LevelFilter::INFO);
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(not_emf).with_filter(filter))
        .with(EmfLayer.with_filter(emf_only))
        .try_init();
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
        asked = asked.with_default(LevelFilter::INFO);
    }
    let capped = |target: &str| CAPPED_AT_INFO.iter().any(|prefix| target.starts_with(prefix));
    let mut filter = Targets::new().with_default(asked.default_level().unwrap_or(LevelFilter::INFO));
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

/// Target of the events whose message is a JSON document (request lines
/// with their EMF metrics), printed as is in either log format.
const EMF_TARGET: &str = "emf";

/// Writes those documents as bare lines on stdout, where CloudWatch looks
/// for EMF; the log formatter would wrap them.
struct EmfLayer;

impl<S: tracing::Subscriber> Layer<S> for EmfLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        // Targets matches by prefix; only this exact target is a document.
        if event.metadata().target() != EMF_TARGET {
            return;
        }
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
        let _ = writeln!(std::io::stdout().lock(), "{}", message.0);
    }
}

/// How one request ended, for its log line and its metrics.
pub struct RequestSummary<'a> {
    pub request_id: &'a str,
    pub outcome: &'a str,
    pub status: u16,
    pub duration: Duration,
}

impl RequestSummary<'_> {
    /// One line per request: the access log and, in the same JSON
    /// document, its CloudWatch metrics.
    pub fn log(&self) {
        tracing::info!(target: EMF_TARGET, "{}", self.document(SystemTime::now()));
    }

    /// The request's log fields plus CloudWatch Embedded Metric Format:
    /// requests, deleted, refused (any 4xx), internal-error and rate-limited
    /// counts and the duration, with no dimension: six custom metrics in
    /// all, whatever the outcomes. The outcome itself is a log field (Logs Insights counts it
    /// per outcome at no metric cost); a dimension would make each outcome
    /// that occurs six more metrics.
    pub fn document(&self, now: SystemTime) -> Value {
        let millis = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        let duration_ms = self.duration.as_secs_f64() * 1000.0;
        json!({
            "level": "INFO",
            "message": "request",
            "request_id": self.request_id,
            "outcome": self.outcome,
            "status": self.status,
            "duration_ms": duration_ms,
            "_aws": {
                "Timestamp": millis,
                "CloudWatchMetrics": [{
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [[]],
                    "Metrics": [
                        { "Name": "Requests", "Unit": "Count" },
                        { "Name": "Deleted", "Unit": "Count" },
                        { "Name": "Refused", "Unit": "Count" },
                        { "Name": "InternalErrors", "Unit": "Count" },
                        { "Name": "RateLimited", "Unit": "Count" },
                        { "Name": "Duration", "Unit": "Milliseconds" }
                    ]
                }]
            },
            "Requests": 1,
            "Deleted": u8::from(self.status == 200),
            "Refused": u8::from((400..500).contains(&self.status)),
            "InternalErrors": u8::from(self.status >= 500),
            "RateLimited": u8::from(self.status == 429),
            "Duration": duration_ms,
        })
    }
}

/// How a delete that the audit trail records ended.
#[derive(Debug, Clone, Copy)]
pub enum AuditResult {
    Deleted,
    /// DynamoDB may have applied it; no answer said so (spec §7).
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
        let (result, message) = match self.result {
            AuditResult::Deleted => ("deleted", "personal access token deleted"),
            AuditResult::Unknown => ("unknown", "personal access token delete attempted; outcome unknown"),
        };
        tracing::info!(
            audit = true,
            activity = 42,
            activity_code = "personal.access.token.delete",
            result,
            initiator_id = %self.initiator_id,
            target_id = %self.target_id,
            account_id = %self.account_id,
            token_id = %self.token_id,
            meta.name = self.token_name,
            meta.is_service_user = self.is_service_user,
            meta.user_name = self.user_name,
            "{message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_declares_every_metric_it_sets() {
        let summary =
            RequestSummary { request_id: "r1", outcome: "deleted", status: 200, duration: Duration::from_millis(7) };
        let emf = summary.document(UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(emf["_aws"]["Timestamp"], 1000);
        assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], METRICS_NAMESPACE);
        for metric in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(emf[name].is_number(), "{name} declared but not set");
        }
        assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]), "no dimension");
        assert_eq!(
            (emf["Deleted"].as_u64(), emf["Refused"].as_u64(), emf["InternalErrors"].as_u64()),
            (Some(1), Some(0), Some(0))
        );
        assert_eq!(emf["Duration"], 7.0);
        assert_eq!((emf["message"].as_str(), emf["request_id"].as_str()), (Some("request"), Some("r1")));
        assert_eq!(
            (emf["outcome"].as_str(), emf["status"].as_u64(), emf["duration_ms"].as_f64()),
            (Some("deleted"), Some(200), Some(7.0))
        );
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
        let asked = [
            "TRACE",
            "debug",
            "lambda_runtime=trace",
            "aws_smithy_runtime=trace,aws_smithy_runtime::client=trace",
            "aws=trace,hyper=trace,h2::codec=trace",
            "trace,aws_sigv4::http_request=trace",
        ];
        for wanted in asked {
            for target in targets {
                for level in [Level::TRACE, Level::DEBUG] {
                    assert!(!log_filter(wanted).would_enable(target, &level), "{wanted}: {target} at {level}");
                }
                assert!(log_filter(wanted).would_enable(target, &Level::INFO), "{wanted}: {target} at INFO");
            }
        }
    }

    #[test]
    fn emf_counts_refusals_and_errors() {
        let at = |status| {
            RequestSummary { request_id: "r", outcome: "x", status, duration: Duration::ZERO }.document(UNIX_EPOCH)
        };
        assert_eq!((at(403)["Refused"].as_u64(), at(403)["Deleted"].as_u64()), (Some(1), Some(0)));
        assert_eq!(at(500)["InternalErrors"].as_u64(), Some(1));
        assert_eq!((at(429)["RateLimited"].as_u64(), at(429)["Refused"].as_u64()), (Some(1), Some(1)));
        assert_eq!(at(403)["RateLimited"].as_u64(), Some(0));
    }
}
