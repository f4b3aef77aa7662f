//! Lambda events in, Lambda responses out, one log line per request. Every
//! event gets an HTTP answer, even one that `lambda_http` cannot read, so
//! API Gateway never has to turn a runtime error into a bare 502.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use lambda_http::http::header::{AUTHORIZATION, HOST};
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Context, LambdaEvent, Request, RequestExt, Service};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::app::App;
use crate::auth::provider::cache::SharedKeyCache;
use crate::deadline::Deadline;
use crate::domain::store::Store;
use crate::http::response::to_lambda_json;
use crate::http::route::{route, Route, RouteError};
use crate::outcome::{Cause, Outcome, BODY_TOO_LARGE, INVALID_REQUEST};
use crate::telemetry::RequestSummary;

/// Longer paths cannot be this route, nor (percent-encoded) a URI.
pub const MAX_PATH_BYTES: usize = 16 * 1024;
/// Bodies are ignored; a large one is refused before anything else is read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Last resort for code that does not honour the [`Deadline`] (a bug): an
/// answer this long before Lambda's. Every DynamoDB call ends within the
/// deadline's larger margin, so this never cuts a delete short.
pub const LAST_RESORT_MARGIN: Duration = Duration::from_millis(100);

/// Runs the Lambda runtime loop until the process ends.
pub async fn run<S: Store + SharedKeyCache>(app: Arc<App<S>>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let app = app.clone();
        async move { Ok::<Value, Infallible>(answer_event(app, &event.payload, event.context).await) }
    }))
    .await
}

/// One raw event to the JSON response Lambda returns to its caller.
pub async fn answer_event<S: Store + SharedKeyCache>(app: Arc<App<S>>, payload: &RawValue, context: Context) -> Value {
    let serve = move |req, deadline| {
        let app = app.clone();
        async move { serve(&app, &req, deadline).await }
    };
    answer_with(serve, payload, context).await
}

/// How `req` ends: its route, then the app's delete within `deadline`.
async fn serve<S: Store + SharedKeyCache>(app: &App<S>, req: &Request, deadline: Deadline) -> Outcome {
    let params = req.path_parameters_ref().and_then(|p| Some((p.first("userId")?, p.first("tokenId")?)));
    match route(req.method(), req.raw_http_path(), params) {
        Err(RouteError::MethodNotAllowed) => Outcome::MethodNotAllowed,
        Err(RouteError::NotFound) => Outcome::RouteNotFound,
        Ok(Route::Preflight) => Outcome::Preflight,
        Ok(Route::Delete(target)) => match app.delete(req.headers().get(AUTHORIZATION), target, &deadline).await {
            Ok(()) => Outcome::Deleted,
            Err(why_not) => why_not,
        },
    }
}

/// `payload` answered by `serve` as the event source's JSON; an
/// unreadable event, a handler past the deadline or a panic still gets an
/// HTTP answer, and every request one log line.
async fn answer_with<S, F>(serve: S, payload: &RawValue, context: Context) -> Value
where
    S: Fn(Request, Deadline) -> F + Send + 'static,
    F: Future<Output = Outcome> + Send,
{
    let started = Instant::now();
    let request_id = context.request_id.clone();
    let request = match read_event(payload) {
        Ok(request) => request,
        Err(outcome) => return to_lambda_json(finish(outcome, &request_id, started)),
    };
    let deadline = Deadline::from_lambda_ms(context.deadline);
    let id = request_id.clone();
    // lambda_http makes the HTTP request of the event, and the event
    // source's JSON of the response.
    let mut adapter = Adapter::from(service_fn(move |req: Request| {
        let (answer, id) = (serve(req, deadline), id.clone());
        async move { Ok::<_, Infallible>(finish(last_resort(answer, &deadline).await, &id, started)) }
    }));
    // A bug must not take the process down: it becomes a 500, which the
    // 5xx alarm sees.
    let answered = AssertUnwindSafe(adapter.call(LambdaEvent::new(request, context))).catch_unwind().await;
    match answered.map(|Ok(response)| serde_json::to_value(response)) {
        Ok(Ok(json)) => json,
        _ => to_lambda_json(finish(Outcome::Internal(Cause::Panic), &request_id, started)),
    }
}

/// The response to `outcome`, and the request's one log line.
fn finish(outcome: Outcome, request_id: &str, started: Instant) -> lambda_http::Response<lambda_http::Body> {
    let (status, name, _) = outcome.row();
    let (cause, refused) = match &outcome {
        Outcome::Internal(cause) => (Some(cause.as_str()), None),
        Outcome::Unauthenticated(refused) => (None, Some((refused.reason.as_str(), refused.shown.to_json()))),
        _ => (None, None),
    };
    let duration = started.elapsed();
    RequestSummary { request_id, outcome: name, status: status.as_u16(), cause, refused, duration }.log();
    outcome.into_response(request_id)
}

/// `answer`, or a 500 just before Lambda's own deadline if it never comes.
async fn last_resort(answer: impl Future<Output = Outcome>, deadline: &Deadline) -> Outcome {
    let Some(left) = deadline.left() else { return answer.await };
    let limit = left + crate::deadline::ANSWER_MARGIN - LAST_RESORT_MARGIN;
    tokio::time::timeout(limit, answer).await.unwrap_or_else(|_| {
        tracing::error!("no answer before the Lambda deadline");
        Outcome::Internal(Cause::Deadline)
    })
}

/// The event as an HTTP API, REST API or ALB request that lambda_http can
/// convert without panicking. It builds a URI from the Host header (or
/// domain name), the path and the query, and decodes base64 bodies,
/// panicking when they do not make one; the function needs only the path
/// and the body's size, so the rest is dropped and the path bounded.
fn read_event(payload: &RawValue) -> Result<LambdaRequest, Outcome> {
    let mut request =
        serde_json::from_str::<LambdaRequest>(payload.get()).map_err(|_| Outcome::BadRequest(INVALID_REQUEST))?;
    let (path, body) = match &mut request {
        LambdaRequest::ApiGatewayV1(r) => {
            r.headers.remove(HOST);
            r.multi_value_headers.remove(HOST);
            r.request_context.domain_name = None;
            (r.path.as_deref(), &mut r.body)
        }
        LambdaRequest::ApiGatewayV2(r) => {
            r.headers.remove(HOST);
            r.request_context.domain_name = None;
            r.raw_query_string = None;
            (r.raw_path.as_deref(), &mut r.body)
        }
        LambdaRequest::Alb(r) => {
            r.headers.remove(HOST);
            r.multi_value_headers.remove(HOST);
            (r.path.as_deref(), &mut r.body)
        }
        _ => return Err(Outcome::BadRequest(INVALID_REQUEST)),
    };
    match path {
        Some(path) if path.len() > MAX_PATH_BYTES => return Err(Outcome::BadRequest(INVALID_REQUEST)),
        Some(path) if path.starts_with('/') => {}
        _ => return Err(Outcome::RouteNotFound),
    }
    if body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(Outcome::BadRequest(BODY_TOO_LARGE));
    }
    *body = None;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_millis as now_ms;
    use serde_json::json;

    /// An HTTP API event.
    fn v2(method: &str, path: &str, headers: Value, body: Option<String>) -> Value {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "headers": headers,
            "requestContext": { "http": { "method": method, "path": path } },
            "body": body, "isBase64Encoded": false
        })
    }

    fn raw(event: &Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(event).unwrap()
    }

    fn delete() -> Box<RawValue> {
        raw(&v2("DELETE", "/api/users/u/tokens/t", json!({}), None))
    }

    fn context() -> Context {
        let mut context = Context::default();
        context.request_id = "req-1".into();
        context
    }

    #[tokio::test]
    async fn a_panic_is_a_500_not_a_400() {
        let got = answer_with(|_: Request, _: Deadline| async { panic!("a bug") }, &delete(), context()).await;
        assert_eq!(got["statusCode"], 500);
        let body: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({ "message": "internal server error", "code": 500 }));
        assert_eq!(got["headers"]["x-request-id"], "req-1");
        assert_eq!(got["headers"]["access-control-allow-origin"], "*");
    }

    #[tokio::test]
    async fn a_handler_past_the_deadline_is_a_500() {
        let handler = |_req: Request, _: Deadline| async { std::future::pending::<Outcome>().await };
        // Past, near and later deadlines: never a hang (the test's own limit fails it instead).
        for deadline_ms in [now_ms() - 1_000, now_ms() + 600, now_ms() + 1_200] {
            let mut context = context();
            context.deadline = deadline_ms;
            let got = tokio::time::timeout(Duration::from_secs(5), answer_with(handler, &delete(), context))
                .await
                .expect("an answer before Lambda's deadline");
            assert_eq!(got["statusCode"], 500, "{deadline_ms}");
        }
    }

    #[tokio::test]
    async fn unreadable_and_readable_events_get_the_same_headers() {
        let not_http = raw(&json!({ "not": "http" }));
        let unreadable = answer_with(|_: Request, _: Deadline| async { Outcome::Deleted }, &not_http, context()).await;
        let refuse = |_: Request, _: Deadline| async { Outcome::from(crate::auth::reason::Reason::JwtBadSignature) };
        let readable = answer_with(refuse, &delete(), context()).await;
        assert_eq!((unreadable["statusCode"].as_u64(), readable["statusCode"].as_u64()), (Some(400), Some(401)));
        for got in [&unreadable, &readable] {
            let mut names: Vec<&String> = got["headers"].as_object().unwrap().keys().collect();
            names.sort();
            assert_eq!(names, ["access-control-allow-origin", "content-type", "x-request-id"], "{got}");
        }
    }

    /// The edge's rows of the status table, and what a hostile event may
    /// hold, through the real entry point on the in-memory store: answered
    /// before any credential is read, or served as usual where lambda_http
    /// would have panicked; nothing deleted that should not be.
    #[tokio::test]
    async fn the_edges_answers_and_hostile_events() {
        let account = crate::app::tests::account(&[]);
        let jwt = account.jwt("o");
        for id in ["o-1", "o-2", "ö k", "o-4"] {
            account.token("o", id, Some(crate::clock::unix_seconds() + 600));
        }
        let before = account.keys();
        let auth = |value: &str| json!({ "authorization": value });
        let path = "/api/users/o/tokens/o-t";
        let huge = "A".repeat(300 * 1024);
        let long_user_id = format!("/api/users/{}/tokens/t", "u".repeat(300));
        let error = |status: u16, message: &str| (status, json!({ "message": message, "code": status }));
        let mut hostile_host = v2("DELETE", "/api/users/o/tokens/o-1", auth(&jwt), None);
        hostile_host["headers"]["host"] = json!("not a host[");
        hostile_host["rawQueryString"] = json!("a b\u{1}#");
        let rest = json!({
            "resource": "/api/users/{userId}/tokens/{tokenId}", "path": "/api/users/o/tokens/o-2", "httpMethod": "DELETE",
            "headers": auth(&jwt), "pathParameters": { "userId": "o", "tokenId": "o-2" },
            "requestContext": { "httpMethod": "DELETE", "domainName": "bad domain:99999999", "stage": "prod" },
            "body": "!!! not base64 !!!", "isBase64Encoded": true
        });
        for (event, want) in [
            (v2("OPTIONS", path, json!({}), None), (204, Value::Null)),
            (v2("GET", path, json!({}), None), error(405, "method not allowed")),
            (v2("DELETE", "/api/peers/p", json!({}), None), error(404, "not found")),
            (v2("DELETE", "no-leading-slash:99999", auth(&jwt), None), error(404, "not found")),
            (v2("DELETE", path, json!({}), Some("x".repeat(MAX_BODY_BYTES + 1))), error(400, "request body too large")),
            (json!({ "not": "http" }), error(400, "invalid request")),
            (v2("DELETE", &format!("/{huge}"), auth(&jwt), None), error(400, "invalid request")),
            (v2("DELETE", path, auth("Bearer a\r\nx-evil: 1"), None), error(400, "invalid request")),
            (v2("DELETE", path, json!({}), None), error(401, "no valid authentication provided")),
            (v2("DELETE", "/api/users/%0A/tokens/t", json!({}), None), error(401, "no valid authentication provided")),
            (v2("DELETE", path, auth(&format!("Bearer {huge}")), None), error(401, "token invalid")),
            (v2("DELETE", path, auth("Bearer ünïcödé"), None), error(401, "token invalid")),
            (v2("DELETE", &long_user_id, auth(&jwt), None), error(400, "invalid user ID")),
            (hostile_host, (200, json!({}))),
            (rest, (200, json!({}))),
            (v2("DELETE", "/prod/api/users/o/tokens/%C3%B6%20k", auth(&jwt), None), (200, json!({}))),
        ] {
            let got = answer_event(account.app.clone(), &raw(&event), context()).await;
            let body = got["body"].as_str().filter(|b| !b.is_empty()).map(|b| serde_json::from_str(b).unwrap());
            let status = got["statusCode"].as_u64().unwrap_or_default() as u16;
            let what: String = event.to_string().chars().take(200).collect();
            assert_eq!((status, body.unwrap_or(Value::Null)), want, "{what}");
            let content_type =
                got["headers"].get("content-type").unwrap_or(&got["multiValueHeaders"]["content-type"][0]);
            assert_eq!(content_type, "application/json", "{what}");
        }
        let left: Vec<_> =
            before.into_iter().filter(|(_, token)| !["o-1", "o-2", "ö k"].contains(&token.as_str())).collect();
        assert_eq!(account.keys(), left, "exactly the three served deletes happened");
    }
}
