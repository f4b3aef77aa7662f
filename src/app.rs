//! A delete, start to end, in NetBird's order (spec §3): authenticate
//! (allowed groups and the rate limit included), validate ids, check
//! permissions, delete, audit. The edge (`http`) routes to it.

use std::sync::Arc;

use lambda_http::http::HeaderValue;

use crate::auth::header::{self, Credential, CredentialError};
use crate::auth::jwt::{JwtError, JwtVerifier};
use crate::auth::keys::JwksError;
use crate::auth::provider_keys::SharedKeyCache;
use crate::clock::{unix_millis, unix_seconds};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::ids::{Target, UserId};
use crate::outcome::Outcome;
use crate::policy::may_delete_token;
use crate::rate_limit::{Bucket, Step};
use crate::storage::items::{TokenItem, UserItem};
use crate::storage::store::{Deletion, PatUse, Store, StoreError};
use crate::telemetry::{AuditEvent, AuditResult};

/// Everything built once at init and shared by every request.
pub struct App {
    store: Arc<Store>,
    jwt: JwtVerifier,
    /// NetBird's per-PAT rate limit, when on.
    bucket: Option<Bucket>,
}

/// Who is calling, and the PAT row they called with, if any.
struct Caller {
    user_id: UserId,
    pat: Option<TokenItem>,
}

impl App {
    pub fn new(config: &Config, client: aws_sdk_dynamodb::Client) -> Result<Self, JwksError> {
        let store = Arc::new(Store::new(client, config));
        let shared = config.key_cache_table.is_some().then(|| store.clone() as Arc<dyn SharedKeyCache>);
        Ok(App { jwt: JwtVerifier::new(&config.auth, shared)?, store, bucket: config.rate_limit.map(Bucket::new) })
    }

    /// While Lambda's init phase gives the CPU in full: opens the two
    /// DynamoDB connections a request may use at once (two calls at once),
    /// and takes the identity provider's keys from the shared cache; with a
    /// shared cache, its read is the second call. Never waits for the
    /// provider: a stale or missing cache entry is refreshed in the
    /// background. A failure is logged; the first request connects again.
    pub async fn warm_up(&self) {
        let keys = self.jwt.keys();
        let second = async {
            keys.warm_up().await;
            if keys.reads_shared_cache() {
                Ok(())
            } else {
                self.store.warm_up().await
            }
        };
        let (first, second) = tokio::join!(self.store.warm_up(), second);
        if let Err(err) = first.and(second) {
            tracing::warn!(error = %err, "DynamoDB warm-up failed; the first request will connect");
        }
    }

    /// Deletes the token `target` names for whoever `authorization`
    /// (the `Authorization` header) says is calling, within `deadline`, or
    /// says why not: authenticate, validate ids, check permissions, delete,
    /// audit (spec §3).
    pub async fn delete(
        &self,
        authorization: Option<&HeaderValue>,
        target: Target,
        deadline: &Deadline,
    ) -> Result<(), Outcome> {
        let caller = self.authenticate(authorization, deadline).await?;
        let (target_id, token_id) = target.validated()?;

        // A PAT's row is confirmed on the table (the index may lag a
        // delete), and its request paid for, while the users are read: no
        // extra round trip.
        let pat_use = async {
            match &caller.pat {
                Some(pat) => self.store.mark_used(pat, unix_millis(), self.bucket.as_ref(), deadline).await,
                None => Ok(PatUse::Marked),
            }
        };
        let (users, pat_use) = tokio::join!(self.users(&caller.user_id, &target_id, deadline), pat_use);
        match pat_use.map_err(internal)? {
            PatUse::Marked => {}
            PatUse::Gone => return Err(Outcome::TokenInvalid),
            PatUse::Limited => return Err(Outcome::TooManyRequests),
        }
        let (caller_row, target_row) = users.map_err(internal)?;
        let (caller_row, target_row) =
            may_delete_token(caller_row.as_ref(), &target_id, target_row.as_ref()).map_err(|refusal| {
                Outcome::Refused { refusal, caller_id: caller.user_id.clone(), target_id: target_id.clone() }
            })?;

        let deletion =
            self.store.delete_token(&target_id, &token_id, &caller_row.account_id, deadline).await.map_err(internal)?;
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
                Ok(())
            }
            Deletion::NotFound => Err(Outcome::TokenNotFound(token_id.clone())),
            Deletion::Unconfirmed { applied, cause } => {
                tracing::error!(error = %cause, applied, "the delete was sent and no whole answer came back");
                audit(if applied { AuditResult::Deleted } else { AuditResult::Unknown }, "");
                Err(Outcome::Internal)
            }
        }
    }

    async fn authenticate(&self, authorization: Option<&HeaderValue>, deadline: &Deadline) -> Result<Caller, Outcome> {
        match header::parse(authorization) {
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
                let row = self
                    .store
                    .token_by_hash(&pat.hash(), deadline)
                    .await
                    .map_err(internal)?
                    .ok_or(Outcome::TokenInvalid)?;
                if !row.is_live(unix_seconds()) {
                    return Err(Outcome::TokenInvalid);
                }
                // The row's copy of its bucket may be stale, never ahead: a
                // refusal from it needs no write.
                if self.bucket.is_some_and(|b| b.first_step(row.rate_limited_until, unix_millis()) == Step::Refuse) {
                    return Err(Outcome::TooManyRequests);
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
        deadline: &Deadline,
    ) -> Result<(Option<UserItem>, Option<UserItem>), StoreError> {
        if caller_id == target_id {
            let user = self.store.user(caller_id, deadline).await?;
            return Ok((user.clone(), user));
        }
        tokio::try_join!(self.store.user(caller_id, deadline), self.store.user(target_id, deadline))
    }
}

fn internal(err: StoreError) -> Outcome {
    tracing::error!(error = %err, "DynamoDB call failed");
    Outcome::Internal
}
