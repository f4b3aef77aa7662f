//! Lambda events in, Lambda responses out. Every event gets an HTTP answer,
//! even one that `lambda_http` cannot read, so API Gateway never has to
//! turn a runtime error into a bare 502.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Context, LambdaEvent, Request, Service};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handler::App;

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
    let request_id = context.request_id.clone();
    let Ok(request) = serde_json::from_str::<LambdaRequest>(payload.get()) else {
        return fallback(ApiError::BadRequest("invalid request"), &request_id);
    };
    let mut adapter = Adapter::from(service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.respond(req).await) }
    }));
    // lambda_http panics on some events it parsed (an unparsable Host
    // header, say); such an event is a bad request, not a crash.
    let answer =
        AssertUnwindSafe(async move { adapter.call(LambdaEvent::new(request, context)).await }).catch_unwind().await;
    match answer {
        Ok(Ok(response)) => {
            serde_json::to_value(response).unwrap_or_else(|_| fallback(ApiError::Internal, &request_id))
        }
        Ok(Err(never)) => match never {},
        Err(_) => fallback(ApiError::BadRequest("invalid request"), &request_id),
    }
}

/// An answer every event source accepts: API Gateway v1 and v2, Function
/// URLs and ALB all read `statusCode`, `headers` and `body`.
fn fallback(err: ApiError, request_id: &str) -> Value {
    let status = err.status().as_u16();
    tracing::info!(request_id, outcome = err.outcome(), status, "request");
    json!({
        "statusCode": status,
        "headers": { "content-type": "application/json", "x-request-id": request_id },
        "body": json!({ "message": err.message(), "code": status }).to_string(),
        "isBase64Encoded": false,
    })
}
