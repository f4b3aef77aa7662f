//! Which route a request is for, and the ids it names (spec §1).
//!
//! Pure: it sees the method, the path and API Gateway's path parameters, and
//! leaves id validation to [`Target::validated`], which the app runs after
//! authentication, as NetBird orders it.

use lambda_http::http::Method;
use percent_encoding::percent_decode_str;

use crate::ids::Target;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// CORS preflight: answered without authentication.
    Preflight,
    Delete(Target),
}

#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    MethodNotAllowed,
    NotFound,
}

/// `path_params` are API Gateway's `pathParameters` (`userId`, `tokenId`),
/// which it has already decoded; without them the raw path is parsed.
pub fn route(method: &Method, raw_path: &str, path_params: Option<(&str, &str)>) -> Result<Route, RouteError> {
    let target = match path_params {
        Some((user_id, token_id)) => Target::new(Some(user_id.to_owned()), Some(token_id.to_owned())),
        None => parse_path(raw_path).ok_or(RouteError::NotFound)?,
    };
    match *method {
        Method::DELETE => Ok(Route::Delete(target)),
        Method::OPTIONS => Ok(Route::Preflight),
        _ => Err(RouteError::MethodNotAllowed),
    }
}

/// `[/<stage>]/api/users/{userId}/tokens/{tokenId}`, each id decoded once.
fn parse_path(raw_path: &str) -> Option<Target> {
    let segments: Vec<&str> = raw_path.strip_prefix('/')?.split('/').collect();
    let route = match segments.len() {
        5 => &segments[..],
        6 if !segments[0].is_empty() => &segments[1..],
        _ => return None,
    };
    match route {
        ["api", "users", user_id, "tokens", token_id] => Some(Target::new(decode(user_id), decode(token_id))),
        _ => None,
    }
}

fn decode(segment: &str) -> Option<String> {
    percent_decode_str(segment).decode_utf8().ok().map(|id| id.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(method: Method, path: &str) -> Result<(String, String), String> {
        match route(&method, path, None) {
            Ok(Route::Delete(target)) => {
                target.validated().map(|(u, t)| (u.to_string(), t.to_string())).map_err(|e| format!("{e:?}"))
            }
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn parses_plain_and_staged_paths() {
        let want = Ok(("u1".to_owned(), "t1".to_owned()));
        assert_eq!(ids(Method::DELETE, "/api/users/u1/tokens/t1"), want);
        assert_eq!(ids(Method::DELETE, "/prod/api/users/u1/tokens/t1"), want);
    }

    #[test]
    fn decodes_once() {
        assert_eq!(
            ids(Method::DELETE, "/api/users/google-oauth2%7C1105/tokens/a%2541"),
            Ok(("google-oauth2|1105".to_owned(), "a%41".to_owned()))
        );
    }

    #[test]
    fn foreign_paths_are_not_found() {
        for path in [
            "",
            "/",
            "/api/users/u1/tokens",
            "/api/users/u1/tokens/t1/",
            "/api/users/u1/tokens/t1/x",
            "/a/b/api/users/u1/tokens/t1",
            "//api/users/u1/tokens/t1",
            "/api/users/u1/token/t1",
            "/API/users/u1/tokens/t1",
            "api/users/u1/tokens/t1",
        ] {
            assert_eq!(route(&Method::DELETE, path, None), Err(RouteError::NotFound), "{path}");
        }
    }

    #[test]
    fn path_wins_over_method() {
        assert_eq!(route(&Method::GET, "/nope", None), Err(RouteError::NotFound));
        assert_eq!(route(&Method::GET, "/api/users/u/tokens/t", None), Err(RouteError::MethodNotAllowed));
        assert_eq!(route(&Method::OPTIONS, "/api/users/u/tokens/t", None), Ok(Route::Preflight));
    }

    #[test]
    fn bad_ids_are_reported_user_first() {
        assert_eq!(ids(Method::DELETE, "/api/users//tokens/t"), Err("User".into()));
        assert_eq!(ids(Method::DELETE, "/api/users/u/tokens/"), Err("Token".into()));
        assert_eq!(ids(Method::DELETE, "/api/users/%2F/tokens/t"), Err("User".into()));
        assert_eq!(ids(Method::DELETE, "/api/users/%0A/tokens/%0A"), Err("User".into()));
        assert_eq!(ids(Method::DELETE, "/api/users/u/tokens/%FF"), Err("Token".into()));
        let long = "a".repeat(257);
        assert_eq!(ids(Method::DELETE, &format!("/api/users/u/tokens/{long}")), Err("Token".into()));
    }

    #[test]
    fn path_parameters_are_taken_as_given() {
        let got = route(&Method::DELETE, "/ignored", Some(("a%41", "t")));
        let Ok(Route::Delete(target)) = got else { panic!("{got:?}") };
        assert_eq!(target.validated(), Ok(("a%41".into(), "t".into())));
    }
}
