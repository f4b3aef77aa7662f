//! Lambda events in, Lambda responses out. Every event gets an HTTP answer,
//! even one that `lambda_http` cannot read, so API Gateway never has to
//! turn a runtime error into a bare 502.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use lambda_http::http::header::HOST;
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Context, LambdaEvent, Request, Service};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::handler::App;
use crate::response::{to_lambda_json, Outcome};

/// Longer paths cannot be this route, nor (percent-encoded) a URI.
const MAX_PATH_BYTES: usize = 16 * 1024;
/// Bodies are ignored; a large one is refused before anything else is read.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Answer this long before Lambda's deadline, so a slow dependency becomes
/// a 500 rather than a timeout.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// Runs the Lambda runtime loop until the process ends.
pub async fn run(app: Arc<App>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let app = app.clone();
        async move { Ok::<Value, Infallible>(handle_event(app, &event.payload, event.context).await) }
    }))
    .await
}

/// One raw event to the JSON response Lambda returns to its caller.
pub async fn handle_event(app: Arc<App>, payload: &RawValue, context: Context) -> Value {
    answer_event(
        move |req| {
            let app = app.clone();
            async move { app.handle(&req).await }
        },
        payload,
        context,
    )
    .await
}

/// `payload` answered by `handle`, within the deadline, as the event
/// source's JSON; an unreadable event, a timeout or a panic still gets an
/// HTTP answer.
async fn answer_event<H, F>(handle: H, payload: &RawValue, context: Context) -> Value
where
    H: Fn(Request) -> F + Send + 'static,
    F: Future<Output = Outcome> + Send,
{
    let started = Instant::now();
    let request_id = context.request_id.clone();
    let request = match read_event(payload) {
        Ok(request) => request,
        Err(outcome) => return to_lambda_json(outcome.respond(&request_id, started)),
    };
    let budget = time_left(context.deadline);
    let id = request_id.clone();
    // lambda_http makes the HTTP request of the event, and the event
    // source's JSON of the response.
    let mut adapter = Adapter::from(service_fn(move |req: Request| {
        let (answer, id) = (handle(req), id.clone());
        async move {
            let outcome = match budget {
                Some(budget) => tokio::time::timeout(budget, answer).await.unwrap_or_else(|_| {
                    tracing::error!("no answer before the Lambda deadline");
                    Outcome::Internal
                }),
                None => answer.await,
            };
            Ok::<_, Infallible>(outcome.respond(&id, started))
        }
    }));
    // A bug must not take the process down: it becomes a 500, which the
    // 5xx alarm sees.
    let answered = AssertUnwindSafe(adapter.call(LambdaEvent::new(request, context))).catch_unwind().await;
    match answered.map(|Ok(response)| serde_json::to_value(response)) {
        Ok(Ok(json)) => json,
        _ => to_lambda_json(Outcome::Internal.respond(&request_id, started)),
    }
}

/// The event as an HTTP API, REST API or ALB request that lambda_http can
/// convert without panicking. It builds a URI from the Host header (or
/// domain name), the path and the query, and decodes base64 bodies,
/// panicking when they do not make one; the function needs only the path
/// and the body's size, so the rest is dropped and the path bounded.
fn read_event(payload: &RawValue) -> Result<LambdaRequest, Outcome> {
    let mut request =
        serde_json::from_str::<LambdaRequest>(payload.get()).map_err(|_| Outcome::BadRequest("invalid request"))?;
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
        _ => return Err(Outcome::BadRequest("invalid request")),
    };
    match path {
        Some(path) if path.len() > MAX_PATH_BYTES => return Err(Outcome::BadRequest("invalid request")),
        Some(path) if path.starts_with('/') => {}
        _ => return Err(Outcome::RouteNotFound),
    }
    if body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(Outcome::BadRequest("request body too large"));
    }
    *body = None;
    Ok(request)
}

/// Time until `deadline_ms` (Unix milliseconds) less the margin; `None`
/// when no usable deadline is known. `cargo lambda watch` sends a duration
/// (600000) instead of a time: a deadline already past is taken as unknown,
/// and the SDK's own timeouts still bound the request.
fn time_left(deadline_ms: u64) -> Option<Duration> {
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let left = Duration::from_millis(deadline_ms.checked_sub(now_ms).filter(|ms| *ms > 0)?);
    Some(left.saturating_sub(DEADLINE_MARGIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(method: &str) -> Box<RawValue> {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "DELETE /api/users/{userId}/tokens/{tokenId}",
            "rawPath": "/api/users/u/tokens/t",
            "headers": {},
            "pathParameters": { "userId": "u", "tokenId": "t" },
            "requestContext": { "http": { "method": method, "path": "/api/users/u/tokens/t" } },
            "isBase64Encoded": false
        });
        serde_json::value::to_raw_value(&event).unwrap()
    }

    fn context() -> Context {
        let mut context = Context::default();
        context.request_id = "req-1".into();
        context
    }

    fn body(json: &Value) -> Value {
        serde_json::from_str(json["body"].as_str().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_panic_is_a_500_not_a_400() {
        let handler = |_req: Request| async { panic!("a bug") };
        let got = answer_event(handler, &event("DELETE"), context()).await;
        assert_eq!(got["statusCode"], 500);
        assert_eq!(body(&got), serde_json::json!({ "message": "internal server error", "code": 500 }));
        assert_eq!(got["headers"]["x-request-id"], "req-1");
        assert_eq!(got["headers"]["access-control-allow-origin"], "*");
    }

    #[tokio::test]
    async fn a_handler_past_the_deadline_is_a_500() {
        let handler = |_req: Request| async { std::future::pending::<Outcome>().await };
        let mut context = context();
        context.deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 600;
        let got = answer_event(handler, &event("DELETE"), context).await;
        assert_eq!(got["statusCode"], 500);
    }

    #[tokio::test]
    async fn unreadable_and_readable_events_get_the_same_headers() {
        let not_http = serde_json::value::to_raw_value(&serde_json::json!({ "not": "http" })).unwrap();
        let unreadable = answer_event(|_req: Request| async { Outcome::Deleted }, &not_http, context()).await;
        let readable = answer_event(|_req: Request| async { Outcome::TokenInvalid }, &event("DELETE"), context()).await;
        assert_eq!((unreadable["statusCode"].as_u64(), readable["statusCode"].as_u64()), (Some(400), Some(401)));
        for got in [&unreadable, &readable] {
            let mut names: Vec<&String> = got["headers"].as_object().unwrap().keys().collect();
            names.sort();
            assert_eq!(names, ["access-control-allow-origin", "content-type", "x-request-id"], "{got}");
        }
    }

    fn now_ms() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
    }

    #[test]
    fn deadlines_leave_a_margin() {
        let left = time_left(now_ms() + 6_000).unwrap();
        assert!(left <= Duration::from_millis(5_500) && left > Duration::from_millis(5_000), "{left:?}");
        assert_eq!(time_left(now_ms() + 100), Some(Duration::ZERO));
    }

    #[test]
    fn implausible_deadlines_are_unknown() {
        assert_eq!(time_left(0), None);
        assert_eq!(time_left(600_000), None);
        assert_eq!(time_left(now_ms() - 1_000), None);
    }
}
