//! One request, start to end, in the contract's order: route,
//! authenticate, validate ids, check permissions, delete, audit.

use lambda_http::http::HeaderMap;
use lambda_http::{Request, RequestExt};

use crate::config::Config;
use crate::credential::{self, Credential, CredentialError};
use crate::ids::UserId;
use crate::items::{unix_now, TokenItem, UserItem};
use crate::jwks::JwksError;
use crate::jwt::{JwtError, JwtVerifier};
use crate::policy::may_delete_token;
use crate::response::Outcome;
use crate::route::{route, Route};
use crate::store::{Deletion, Store, StoreError};
use crate::telemetry::{AuditEvent, AuditResult};

/// Everything built once at init and shared by every request.
pub struct App {
    store: Store,
    jwt: JwtVerifier,
}

/// Who is calling, and the PAT row they called with, if any.
struct Caller {
    user_id: UserId,
    pat: Option<TokenItem>,
}

impl App {
    pub fn new(config: &Config, client: aws_sdk_dynamodb::Client) -> Result<Self, JwksError> {
        Ok(App { store: Store::new(client, config), jwt: JwtVerifier::new(&config.auth)? })
    }

    /// Opens the DynamoDB connections and fetches remote keys while Lambda's
    /// init phase gives the CPU in full. A failure is logged, not fatal;
    /// a key configuration that can never work is.
    pub async fn warm_up(&self) -> Result<(), JwksError> {
        let (store, keys) = tokio::join!(self.store.warm_up(), self.jwt.warm_up());
        if let Err(err) = store {
            tracing::warn!(error = %err, "DynamoDB warm-up failed; the first request will connect");
        }
        keys
    }

    /// How `req` ends; never fails.
    pub async fn handle(&self, req: &Request) -> Outcome {
        match self.try_handle(req).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    async fn try_handle(&self, req: &Request) -> Result<Outcome, Outcome> {
        let params = req.path_parameters_ref().and_then(|p| Some((p.first("userId")?, p.first("tokenId")?)));
        let target = match route(req.method(), req.raw_http_path(), params)? {
            Route::Preflight => return Ok(Outcome::Preflight),
            Route::Delete(target) => target,
        };
        let caller = self.authenticate(req.headers()).await?;
        let (target_id, token_id) = target.validated()?;

        // A PAT's row is confirmed on the table (the index may lag a
        // delete) while the users are read: no extra round trip.
        let pat_still_valid = async {
            match &caller.pat {
                Some(pat) => self.store.mark_used(pat, unix_now()).await,
                None => Ok(true),
            }
        };
        let (users, pat_still_valid) = tokio::join!(self.users(&caller.user_id, &target_id), pat_still_valid);
        if !pat_still_valid.map_err(internal)? {
            return Err(Outcome::TokenInvalid);
        }
        let (caller_row, target_row) = users.map_err(internal)?;
        let (caller_row, target_row) =
            may_delete_token(caller_row.as_ref(), &target_id, target_row.as_ref()).map_err(|refusal| {
                Outcome::Refused { refusal, caller_id: caller.user_id.clone(), target_id: target_id.clone() }
            })?;

        let deletion =
            self.store.delete_token(&target_id, &token_id, &caller_row.account_id).await.map_err(internal)?;
        let audit = |result, token_name: &str| {
            AuditEvent {
                result,
                initiator_id: &caller_row.user_id,
                target_id: &target_id,
                account_id: &caller_row.account_id,
                token_id: &token_id,
                token_name,
                is_service_user: target_row.is_service_user,
                user_name: target_row.service_user_name.as_deref().unwrap_or_default(),
            }
            .log()
        };
        match deletion {
            Deletion::Deleted { name } => {
                audit(AuditResult::Deleted, &name);
                Ok(Outcome::Deleted)
            }
            Deletion::NotFound => Err(Outcome::TokenNotFound(token_id.clone())),
            Deletion::Unknown(err) => {
                tracing::error!(error = %err, "the delete's outcome is unknown");
                audit(AuditResult::Unknown, "");
                Err(Outcome::Internal)
            }
        }
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Outcome> {
        let header = headers.get("authorization").map(|v| v.to_str().map_err(|_| ()));
        match credential::parse(header) {
            Err(CredentialError::Missing) => Err(Outcome::NoAuthentication),
            Err(CredentialError::Invalid) => Err(Outcome::TokenInvalid),
            Ok(Credential::Jwt(token)) => match self.jwt.verify(token).await {
                Ok(user_id) => Ok(Caller { user_id, pat: None }),
                Err(JwtError::Invalid) => Err(Outcome::TokenInvalid),
                Err(JwtError::KeysUnavailable) => {
                    tracing::error!("no usable JWT signing keys: the key set could not be fetched");
                    Err(Outcome::Internal)
                }
            },
            Ok(Credential::Pat(pat)) => {
                let row =
                    self.store.token_by_hash(&pat.hash()).await.map_err(internal)?.ok_or(Outcome::TokenInvalid)?;
                if !row.is_live(unix_now()) {
                    return Err(Outcome::TokenInvalid);
                }
                Ok(Caller { user_id: row.user_id.clone(), pat: Some(row) })
            }
        }
    }

    /// The caller's and the target's rows, read at once (one round trip).
    async fn users(
        &self,
        caller_id: &UserId,
        target_id: &UserId,
    ) -> Result<(Option<UserItem>, Option<UserItem>), StoreError> {
        if caller_id == target_id {
            let user = self.store.user(caller_id).await?;
            return Ok((user.clone(), user));
        }
        tokio::try_join!(self.store.user(caller_id), self.store.user(target_id))
    }
}

fn internal(err: StoreError) -> Outcome {
    tracing::error!(error = %err, "DynamoDB call failed");
    Outcome::Internal
}
