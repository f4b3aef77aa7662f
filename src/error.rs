//! Every way a request can end, as a status, a message and a metric name
//! (contract §4). The only place that turns outcomes into responses.

use lambda_http::http::{header, HeaderValue, Response, StatusCode};
use lambda_http::Body;

use crate::policy::Refusal;
use crate::route::{IdError, RouteError};

#[derive(Debug, PartialEq, Eq)]
pub enum ApiError {
    MethodNotAllowed,
    NotFound,
    BadRequest(&'static str),
    NoAuthentication,
    TokenInvalid,
    InvalidUserId,
    InvalidTokenId,
    Refused {
        refusal: Refusal,
        caller_id: String,
        target_id: String,
    },
    TokenNotFound(String),
    /// Details are logged where they happen; the client learns nothing.
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotFound | ApiError::TokenNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::InvalidUserId | ApiError::InvalidTokenId => StatusCode::BAD_REQUEST,
            ApiError::NoAuthentication | ApiError::TokenInvalid => StatusCode::UNAUTHORIZED,
            ApiError::Refused { refusal: Refusal::TargetNotFound, .. } => StatusCode::NOT_FOUND,
            ApiError::Refused { .. } => StatusCode::FORBIDDEN,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::MethodNotAllowed => "method not allowed".into(),
            ApiError::NotFound => "not found".into(),
            ApiError::BadRequest(why) => (*why).into(),
            ApiError::NoAuthentication => "no valid authentication provided".into(),
            ApiError::TokenInvalid => "token invalid".into(),
            ApiError::InvalidUserId => "invalid user ID".into(),
            ApiError::InvalidTokenId => "invalid token ID".into(),
            ApiError::Refused { refusal, caller_id, target_id } => match refusal {
                Refusal::CallerNotFound => format!("failed to validate user permissions: user: {caller_id} not found"),
                Refusal::CallerBlocked => "failed to validate user permissions: user is blocked".into(),
                Refusal::CallerPendingApproval => {
                    "failed to validate user permissions: user is pending approval".into()
                }
                Refusal::PermissionDenied => "permission denied".into(),
                Refusal::TargetNotFound => format!("user: {target_id} not found"),
                Refusal::AdminRequired => "admin role required to perform this action".into(),
            },
            ApiError::TokenNotFound(token_id) => format!("pat: {token_id} not found"),
            ApiError::Internal => "internal server error".into(),
        }
    }

    /// A stable name per reason, for logs and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::NotFound => "route_not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NoAuthentication => "no_authentication",
            ApiError::TokenInvalid => "token_invalid",
            ApiError::InvalidUserId => "invalid_user_id",
            ApiError::InvalidTokenId => "invalid_token_id",
            ApiError::Refused { refusal, .. } => match refusal {
                Refusal::CallerNotFound => "caller_not_found",
                Refusal::CallerBlocked => "caller_blocked",
                Refusal::CallerPendingApproval => "caller_pending_approval",
                Refusal::PermissionDenied => "permission_denied",
                Refusal::TargetNotFound => "user_not_found",
                Refusal::AdminRequired => "admin_required",
            },
            ApiError::TokenNotFound(_) => "token_not_found",
            ApiError::Internal => "internal_error",
        }
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let status = self.status();
        let body = serde_json::json!({ "message": self.message(), "code": status.as_u16() });
        json_response(status, body.to_string(), request_id)
    }
}

impl From<RouteError> for ApiError {
    fn from(err: RouteError) -> Self {
        match err {
            RouteError::MethodNotAllowed => ApiError::MethodNotAllowed,
            RouteError::NotFound => ApiError::NotFound,
        }
    }
}

impl From<IdError> for ApiError {
    fn from(err: IdError) -> Self {
        match err {
            IdError::User => ApiError::InvalidUserId,
            IdError::Token => ApiError::InvalidTokenId,
        }
    }
}

pub fn deleted_response(request_id: &str) -> Response<Body> {
    json_response(StatusCode::OK, "{}".into(), request_id)
}

/// CORS preflight, answered as NetBird's server does: permissive, no auth.
pub fn preflight_response(request_id: &str) -> Response<Body> {
    let mut response = json_response(StatusCode::NO_CONTENT, String::new(), request_id);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PUT, DELETE, OPTIONS"),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, "Accept, Content-Type, Content-Length, Accept-Encoding, Authorization"),
        (header::ACCESS_CONTROL_MAX_AGE, "300"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn json_response(status: StatusCode, body: String, request_id: &str) -> Response<Body> {
    let mut response = Response::new(if body.is_empty() { Body::Empty } else { Body::Text(body) });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    // Lambda request ids are UUIDs; anything else is dropped, not echoed.
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(err: ApiError) -> (u16, serde_json::Value) {
        let response = err.into_response("req-1");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-request-id"], "req-1");
        let Body::Text(text) = response.body() else { panic!("no body") };
        (response.status().as_u16(), serde_json::from_str(text).unwrap())
    }

    #[test]
    fn errors_carry_status_and_lowercase_message() {
        let refused = |refusal| ApiError::Refused { refusal, caller_id: "c1".into(), target_id: "t1".into() };
        let cases = [
            (ApiError::NoAuthentication, 401, "no valid authentication provided"),
            (ApiError::TokenInvalid, 401, "token invalid"),
            (ApiError::InvalidUserId, 400, "invalid user ID"),
            (ApiError::InvalidTokenId, 400, "invalid token ID"),
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
            (ApiError::TokenNotFound("tok".into()), 404, "pat: tok not found"),
            (ApiError::Internal, 500, "internal server error"),
            (ApiError::MethodNotAllowed, 405, "method not allowed"),
            (ApiError::NotFound, 404, "not found"),
        ];
        for (err, status, message) in cases {
            let (got_status, got) = body(err);
            assert_eq!(got_status, status);
            assert_eq!(got, serde_json::json!({ "message": message, "code": status }));
        }
    }

    #[test]
    fn ids_with_quotes_stay_valid_json() {
        let (_, got) = body(ApiError::TokenNotFound("a\"b\\c".into()));
        assert_eq!(got["message"], "pat: a\"b\\c not found");
    }

    #[test]
    fn preflight_has_cors_and_no_body() {
        let response = preflight_response("r");
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert!(response.headers()["access-control-allow-methods"].to_str().unwrap().contains("DELETE"));
        assert!(matches!(response.body(), Body::Empty));
    }
}
