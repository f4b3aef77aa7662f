//! One request, start to end, in the contract's order: route, authenticate,
//! validate ids, check permissions, delete, audit.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_http::http::HeaderMap;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::config::Config;
use crate::credential::{self, Credential, CredentialError};
use crate::error::{deleted_response, preflight_response, ApiError};
use crate::jwks::JwksError;
use crate::jwt::{JwtError, JwtVerifier};
use crate::policy::may_delete_token;
use crate::route::{route, Route};
use crate::store::{Store, StoreError, TokenRow};
use crate::telemetry::{AuditEvent, RequestSummary};
use crate::user::User;

/// Answer this long before Lambda's deadline, so a slow dependency becomes
/// a 500 rather than a timeout.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// Everything built once at init and shared by every request.
pub struct App {
    store: Store,
    jwt: JwtVerifier,
}

enum Done {
    Preflight,
    Deleted,
}

/// Who is calling, and the PAT they called with, if any.
struct Caller {
    user_id: String,
    pat: Option<TokenRow>,
}

impl App {
    pub fn new(config: &Config, client: aws_sdk_dynamodb::Client) -> Result<Self, JwksError> {
        Ok(App { store: Store::new(client, config), jwt: JwtVerifier::new(&config.auth)? })
    }

    /// Opens the DynamoDB connection and fetches remote keys while Lambda's
    /// init phase gives the CPU in full. Failures are logged, not fatal.
    pub async fn warm_up(&self) {
        let (store, ()) = tokio::join!(self.store.warm_up(), self.jwt.warm_up());
        if let Err(err) = store {
            tracing::warn!(error = %err, "DynamoDB warm-up failed; the first request will connect");
        }
    }

    /// The response to `req`, logged with its outcome; never fails.
    pub async fn respond(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let context = req.lambda_context_ref();
        let request_id = context.map(|c| c.request_id.clone()).unwrap_or_default();
        let budget = context.and_then(|c| time_left(c.deadline));
        let result = match budget {
            Some(budget) => tokio::time::timeout(budget, self.handle(&req)).await.unwrap_or_else(|_| {
                tracing::error!(request_id, "no answer before the Lambda deadline");
                Err(ApiError::Internal)
            }),
            None => self.handle(&req).await,
        };
        let (outcome, response) = match result {
            Ok(Done::Deleted) => ("deleted", deleted_response(&request_id)),
            Ok(Done::Preflight) => ("preflight", preflight_response(&request_id)),
            Err(err) => (err.outcome(), err.into_response(&request_id)),
        };
        RequestSummary {
            request_id: &request_id,
            outcome,
            status: response.status().as_u16(),
            duration: started.elapsed(),
        }
        .log();
        response
    }

    async fn handle(&self, req: &Request) -> Result<Done, ApiError> {
        let params = req.path_parameters_ref().and_then(|p| Some((p.first("userId")?, p.first("tokenId")?)));
        let target = match route(req.method(), req.raw_http_path(), params)? {
            Route::Preflight => return Ok(Done::Preflight),
            Route::Delete(target) => target,
        };
        let caller = self.authenticate(req.headers()).await?;
        let (target_id, token_id) = target.validated()?;

        let now = unix_now();
        let users = self.users(&caller.user_id, &target_id);
        let mark_used = async {
            if let Some(pat) = &caller.pat {
                if let Err(err) = self.store.mark_used(pat, now).await {
                    tracing::warn!(error = %err, "could not record the token's last use");
                }
            }
        };
        let (users, ()) = tokio::join!(users, mark_used);
        let (caller_row, target_row) = users.map_err(internal)?;

        let (caller_row, target_row) =
            may_delete_token(caller_row.as_ref(), &target_id, target_row.as_ref()).map_err(|refusal| {
                ApiError::Refused { refusal, caller_id: caller.user_id.clone(), target_id: target_id.clone() }
            })?;
        let deleted = self
            .store
            .delete_token(&target_id, &token_id, &caller_row.account_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::TokenNotFound(token_id.clone()))?;
        AuditEvent {
            initiator_id: &caller_row.id,
            target_id: &target_id,
            account_id: &caller_row.account_id,
            token_id: &token_id,
            token_name: &deleted.name,
            is_service_user: target_row.is_service_user,
            user_name: target_row.service_user_name.as_deref().unwrap_or_default(),
        }
        .log();
        Ok(Done::Deleted)
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let header = headers.get("authorization").map(|v| v.to_str().map_err(|_| ()));
        match credential::parse(header) {
            Err(CredentialError::Missing) => Err(ApiError::NoAuthentication),
            Err(CredentialError::Invalid) => Err(ApiError::TokenInvalid),
            Ok(Credential::Jwt(token)) => match self.jwt.verify(token).await {
                Ok(user_id) => Ok(Caller { user_id, pat: None }),
                Err(JwtError::Invalid) => Err(ApiError::TokenInvalid),
                Err(JwtError::KeysUnavailable) => {
                    tracing::error!("no JWT signing keys: AUTH_KEYS_LOCATION could not be fetched");
                    Err(ApiError::Internal)
                }
            },
            Ok(Credential::Pat(pat)) => {
                let row =
                    self.store.token_by_hash(&pat.hash()).await.map_err(internal)?.ok_or(ApiError::TokenInvalid)?;
                if row.expires_at.is_none_or(|expires| expires <= unix_now()) {
                    return Err(ApiError::TokenInvalid);
                }
                Ok(Caller { user_id: row.user_id.clone(), pat: Some(row) })
            }
        }
    }

    /// The caller's and the target's rows, read at once (one round trip).
    async fn users(&self, caller_id: &str, target_id: &str) -> Result<(Option<User>, Option<User>), StoreError> {
        if caller_id == target_id {
            let user = self.store.user(caller_id).await?;
            return Ok((user.clone(), user));
        }
        tokio::try_join!(self.store.user(caller_id), self.store.user(target_id))
    }
}

fn internal(err: StoreError) -> ApiError {
    tracing::error!(error = %err, "DynamoDB call failed");
    ApiError::Internal
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Time until `deadline_ms` (Unix milliseconds) less the margin; `None`
/// when no usable deadline is known. `cargo lambda watch` sends a duration
/// (600000) instead of a time: a deadline already past is taken as unknown,
/// and the SDK's own timeouts still bound the request.
fn time_left(deadline_ms: u64) -> Option<Duration> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    let left = Duration::from_millis(deadline_ms.checked_sub(now_ms).filter(|ms| *ms > 0)?);
    Some(left.saturating_sub(DEADLINE_MARGIN))
}

#[cfg(test)]
mod tests {
    use super::*;

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
