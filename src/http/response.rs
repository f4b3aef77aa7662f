//! The one place that turns an [`Outcome`] into a response (spec §4): one
//! table from outcome to status, message and name; the same headers on
//! every answer.

use std::borrow::Cow;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::{header, HeaderValue, Response, StatusCode};
use lambda_http::Body;
use serde_json::Value;

use crate::domain::policy::Refusal;
use crate::http::route::RouteError;
use crate::outcome::Outcome;

impl Outcome {
    /// The table: status, the outcome's stable name (the `outcome` field of
    /// the request's log line), and the message of the body.
    pub fn row(&self) -> (StatusCode, &'static str, Cow<'static, str>) {
        use Refusal::*;
        use StatusCode as S;
        let fixed = |status, name, message: &'static str| (status, name, Cow::Borrowed(message));
        match self {
            Outcome::Deleted => fixed(S::OK, "deleted", ""),
            Outcome::Preflight => fixed(S::NO_CONTENT, "preflight", ""),
            Outcome::MethodNotAllowed => fixed(S::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed"),
            Outcome::RouteNotFound => fixed(S::NOT_FOUND, "route_not_found", "not found"),
            Outcome::BadRequest(why) => fixed(S::BAD_REQUEST, "bad_request", why),
            Outcome::NoAuthentication => {
                fixed(S::UNAUTHORIZED, "no_authentication", "no valid authentication provided")
            }
            Outcome::TokenInvalid => fixed(S::UNAUTHORIZED, "token_invalid", "token invalid"),
            Outcome::InvalidUserId => fixed(S::BAD_REQUEST, "invalid_user_id", "invalid user ID"),
            Outcome::InvalidTokenId => fixed(S::BAD_REQUEST, "invalid_token_id", "invalid token ID"),
            Outcome::Refused { refusal, caller_id, target_id } => match refusal {
                CallerNotFound => (
                    S::FORBIDDEN,
                    "caller_not_found",
                    format!("failed to validate user permissions: user: {caller_id} not found").into(),
                ),
                CallerBlocked => {
                    fixed(S::FORBIDDEN, "caller_blocked", "failed to validate user permissions: user is blocked")
                }
                CallerPendingApproval => fixed(
                    S::FORBIDDEN,
                    "caller_pending_approval",
                    "failed to validate user permissions: user is pending approval",
                ),
                PermissionDenied => fixed(S::FORBIDDEN, "permission_denied", "permission denied"),
                TargetNotFound => (S::NOT_FOUND, "user_not_found", format!("user: {target_id} not found").into()),
                AdminRequired => fixed(S::FORBIDDEN, "admin_required", "admin role required to perform this action"),
            },
            Outcome::TokenNotFound(token_id) => {
                (S::NOT_FOUND, "token_not_found", format!("pat: {token_id} not found").into())
            }
            Outcome::TooManyRequests => fixed(S::TOO_MANY_REQUESTS, "rate_limited", "too many requests"),
            Outcome::Internal(_) => fixed(S::INTERNAL_SERVER_ERROR, "internal_error", "internal server error"),
        }
    }

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

impl From<RouteError> for Outcome {
    fn from(err: RouteError) -> Self {
        match err {
            RouteError::MethodNotAllowed => Outcome::MethodNotAllowed,
            RouteError::NotFound => Outcome::RouteNotFound,
        }
    }
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

    #[test]
    fn errors_carry_status_and_lowercase_message() {
        let refused = |refusal| Outcome::Refused { refusal, caller_id: "c1".into(), target_id: "t1".into() };
        let cases = [
            (Outcome::NoAuthentication, 401, "no valid authentication provided"),
            (Outcome::TokenInvalid, 401, "token invalid"),
            (Outcome::InvalidUserId, 400, "invalid user ID"),
            (Outcome::InvalidTokenId, 400, "invalid token ID"),
            (Outcome::BadRequest("invalid request"), 400, "invalid request"),
            (refused(Refusal::CallerNotFound), 403, "failed to validate user permissions: user: c1 not found"),
            (refused(Refusal::CallerBlocked), 403, "failed to validate user permissions: user is blocked"),
            (
                refused(Refusal::CallerPendingApproval),
                403,
                "failed to validate user permissions: user is pending approval",
            ),
            (refused(Refusal::PermissionDenied), 403, "permission denied"),
            (refused(Refusal::TargetNotFound), 404, "user: t1 not found"),
            (refused(Refusal::AdminRequired), 403, "admin role required to perform this action"),
            (Outcome::TokenNotFound("tok".into()), 404, "pat: tok not found"),
            (Outcome::TooManyRequests, 429, "too many requests"),
            (Outcome::Internal(crate::outcome::Cause::Storage), 500, "internal server error"),
            (Outcome::MethodNotAllowed, 405, "method not allowed"),
            (Outcome::RouteNotFound, 404, "not found"),
        ];
        for (outcome, status, message) in cases {
            let (got_status, got) = body(outcome);
            assert_eq!(got_status, status);
            assert_eq!(got, serde_json::json!({ "message": message, "code": status }));
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
