//! The one place that turns an [`Outcome`] into a response (spec §4): its
//! row of the status table as the body, the same headers on every answer.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::{header, HeaderValue, Response};
use lambda_http::Body;
use serde_json::Value;

use crate::outcome::Outcome;

impl Outcome {
    /// The response; `request_id` becomes its `X-Request-Id`.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let (status, _, message) = self.row();
        let body = match self {
            Outcome::Deleted => Body::Text("{}".into()),
            Outcome::Preflight => Body::Empty,
            _ => Body::Text(serde_json::json!({ "message": message, "code": status.as_u16() }).to_string()),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        // RFC 9110: a 405 names the methods the route has.
        if self == Outcome::MethodNotAllowed {
            headers.insert(header::ALLOW, HeaderValue::from_static("DELETE, OPTIONS"));
        }
        if self == Outcome::Preflight {
            for (name, value) in [
                (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PUT, DELETE, OPTIONS"),
                (
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "Accept, Content-Type, Content-Length, Accept-Encoding, Authorization",
                ),
                (header::ACCESS_CONTROL_MAX_AGE, "300"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        // Lambda request ids are UUIDs; anything else is dropped, not echoed.
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", value);
        }
        response
    }
}

/// `response` as the JSON Lambda returns when the event could not be read
/// as an HTTP request: the HTTP API (payload 2.0) form, which API Gateway
/// v1 and v2, Function URLs and ALB all read.
pub fn to_lambda_json(response: Response<Body>) -> Value {
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    out.body = Some(body).filter(|b| !matches!(b, Body::Empty));
    serde_json::to_value(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(outcome: Outcome) -> Response<Body> {
        outcome.into_response("req-1")
    }

    fn body(outcome: Outcome) -> (u16, Value) {
        let response = answer(outcome);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-request-id"], "req-1");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let Body::Text(text) = response.body() else { panic!("no body") };
        (response.status().as_u16(), serde_json::from_str(text).unwrap())
    }

    /// The table itself is held to the README by `tests/documents.rs`;
    /// here, that each row is what the body says.
    #[test]
    fn every_error_body_is_its_rows_message_and_status() {
        for outcome in Outcome::every() {
            let (status, _, message) = outcome.row();
            if matches!(outcome, Outcome::Deleted | Outcome::Preflight) {
                continue;
            }
            let want = serde_json::json!({ "message": message, "code": status.as_u16() });
            assert_eq!(body(outcome.clone()), (status.as_u16(), want), "{outcome:?}");
        }
        assert_eq!(body(Outcome::Deleted), (200, serde_json::json!({})));
    }

    #[test]
    fn ids_with_quotes_stay_valid_json() {
        let (_, got) = body(Outcome::TokenNotFound("a\"b\\c".into()));
        assert_eq!(got["message"], "pat: a\"b\\c not found");
    }

    #[test]
    fn method_not_allowed_names_the_methods_allowed() {
        assert_eq!(answer(Outcome::MethodNotAllowed).headers()["allow"], "DELETE, OPTIONS");
        assert!(answer(Outcome::RouteNotFound).headers().get("allow").is_none());
    }

    #[test]
    fn preflight_has_cors_and_no_body() {
        let response = answer(Outcome::Preflight);
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert!(response.headers()["access-control-allow-methods"].to_str().unwrap().contains("DELETE"));
        assert!(matches!(response.body(), Body::Empty));
    }

    #[test]
    fn lambda_json_keeps_status_headers_and_body() {
        let json = to_lambda_json(answer(Outcome::BadRequest("invalid request")));
        assert_eq!(json["statusCode"], 400);
        assert_eq!(json["headers"]["content-type"], "application/json");
        assert_eq!(json["headers"]["access-control-allow-origin"], "*");
        assert_eq!(json["headers"]["x-request-id"], "req-1");
        let body: Value = serde_json::from_str(json["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({ "message": "invalid request", "code": 400 }));
    }
}
