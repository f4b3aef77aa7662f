//! Lambda events in, Lambda responses out. Every event gets an HTTP answer,
//! even one that `lambda_http` cannot read, so API Gateway never has to
//! turn a runtime error into a bare 502.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use lambda_http::http::header::HOST;
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Context, LambdaEvent, Request, Service};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handler::App;
use crate::telemetry::RequestSummary;

/// Longer paths cannot be this route, nor (percent-encoded) a URI.
const MAX_PATH_BYTES: usize = 16 * 1024;
/// Bodies are ignored; a large one is refused before anything else is read.
const MAX_BODY_BYTES: usize = 16 * 1024;

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
    let started = Instant::now();
    let request_id = context.request_id.clone();
    let fallback = |err: ApiError| fallback(err, &request_id, started);
    let Ok(mut request) = serde_json::from_str::<LambdaRequest>(payload.get()) else {
        return fallback(ApiError::BadRequest("invalid request"));
    };
    if let Err(err) = tame(&mut request) {
        return fallback(err);
    }
    // A last guard: `tame` removes every cause of a lambda_http panic known.
    match AssertUnwindSafe(answer(app, request, context)).catch_unwind().await {
        Ok(Some(response)) => response,
        Ok(None) => fallback(ApiError::Internal),
        Err(_) => fallback(ApiError::BadRequest("invalid request")),
    }
}

/// `request` made an HTTP request by lambda_http, answered by `app`, and
/// its response made the JSON of the event's source.
async fn answer(app: Arc<App>, request: LambdaRequest, context: Context) -> Option<Value> {
    let mut adapter = Adapter::from(service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.respond(req).await) }
    }));
    let Ok(response) = adapter.call(LambdaEvent::new(request, context)).await;
    serde_json::to_value(response).ok()
}

/// lambda_http builds a URI from the Host header (or domain name), the
/// path and the query, and decodes base64 bodies, panicking when they do
/// not make one. The function needs only the path and the body's size, so
/// the rest is dropped and the path bounded before the conversion.
fn tame(request: &mut LambdaRequest) -> Result<(), ApiError> {
    let (path, body) = match request {
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
        _ => return Err(ApiError::BadRequest("invalid request")),
    };
    match path {
        Some(path) if path.len() > MAX_PATH_BYTES => return Err(ApiError::BadRequest("invalid request")),
        Some(path) if path.starts_with('/') => {}
        _ => return Err(ApiError::NotFound),
    }
    if body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(ApiError::BadRequest("request body too large"));
    }
    *body = None;
    Ok(())
}

/// An answer every event source accepts: API Gateway v1 and v2, Function
/// URLs and ALB all read `statusCode`, `headers` and `body`.
fn fallback(err: ApiError, request_id: &str, started: Instant) -> Value {
    let status = err.status().as_u16();
    RequestSummary { request_id, outcome: err.outcome(), status, duration: started.elapsed() }.log();
    json!({
        "statusCode": status,
        "headers": { "content-type": "application/json", "x-request-id": request_id },
        "body": json!({ "message": err.message(), "code": status }).to_string(),
        "isBase64Encoded": false,
    })
}
