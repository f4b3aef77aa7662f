//! A delete, start to end, in NetBird's order (spec §1): authenticate
//! (allowed groups included), record a PAT's use and pay from its bucket,
//! validate the ids, check permissions, delete, audit. The edge (`http`)
//! routes to it; storage is whatever implements [`Store`] (and, for the
//! provider's keys, [`SharedKeyCache`]).

use std::sync::Arc;

use lambda_http::http::HeaderValue;

use crate::auth::header::{self, Credential};
use crate::auth::jwt::{JwtError, JwtVerifier, Verified};
use crate::auth::provider::cache::SharedKeyCache;
use crate::auth::reason::{Reason, Refused, Shown};
use crate::clock::{unix_millis, unix_seconds};
use crate::config::{Config, ConfigError};
use crate::deadline::Deadline;
use crate::domain::policy::{may_delete_token, Grant};
use crate::domain::rate_limit::Bucket;
use crate::domain::store::{Deletion, Store, StoreError};
use crate::domain::{PersonalAccessToken, User};
use crate::ids::{Target, UserId};
use crate::outcome::{Cause, Outcome};
use crate::telemetry::{AuditEvent, AuditResult};

/// Everything built once at init and shared by every request.
pub struct App<S> {
    store: Arc<S>,
    jwt: JwtVerifier<S>,
    /// NetBird's per-PAT rate limit, when on.
    bucket: Option<Bucket>,
    observer: Option<Observer>,
}

/// A step of a delete as `make explain` shows it; the function has no
/// observer.
#[derive(Debug)]
pub enum Step<'a> {
    /// The header holds a credential of this kind: `JWT` or `PAT`.
    Credential(&'static str),
    /// A JWT passed every check.
    Jwt(&'a Verified),
    /// The index found the PAT's row.
    Pat(&'a PersonalAccessToken),
    /// What became of the PAT's use.
    PatUse(PatUse),
    Users {
        caller: Option<&'a User>,
        target: Option<&'a User>,
    },
    Allowed(Grant),
    Deletion(&'a Deletion),
}

pub type Observer = Box<dyn Fn(Step<'_>) + Send + Sync>;

/// Who is calling, and the PAT they called with, if any.
struct Caller {
    user_id: UserId,
    pat: Option<PersonalAccessToken>,
}

/// What became of a PAT's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatUse {
    /// Recorded (and paid for from its bucket, with a rate limit).
    Marked,
    /// The row is gone: the token was deleted a moment ago.
    Gone,
    /// Its bucket is empty (or, rarely, the row is gone as well): nothing
    /// was written.
    Limited,
}

impl<S: Store + SharedKeyCache> App<S> {
    /// The app on `store`, which also shares the provider's keys with the
    /// fleet when `config` names a key cache table.
    pub fn new(config: &Config, store: Arc<S>) -> Result<Self, ConfigError> {
        let shared = config.key_cache_table.is_some().then(|| store.clone());
        let jwt = JwtVerifier::new(&config.auth, shared)?;
        Ok(App { jwt, store, bucket: config.rate_limit.map(Bucket::new), observer: None })
    }

    /// The app telling `observer` each step it takes.
    pub fn observed(self, observer: Observer) -> Self {
        App { observer: Some(observer), ..self }
    }

    fn note(&self, step: Step<'_>) {
        if let Some(observer) = &self.observer {
            observer(step);
        }
    }

    /// While Lambda's init phase gives the CPU in full: opens the two
    /// connections a request may use at once (two calls at once), and takes
    /// the identity provider's keys from the shared cache; with a shared
    /// cache, its read is the second call. Never waits for the provider. A
    /// failure is logged; the first request connects again.
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
            tracing::warn!(error = %err, "the storage warm-up failed; the first request will connect");
        }
    }

    /// Deletes the token `target` names for whoever `authorization`
    /// (the `Authorization` header) says is calling, within `deadline`, or
    /// says why not (spec §2, §3).
    pub async fn delete(
        &self,
        authorization: Option<&HeaderValue>,
        target: Target,
        deadline: &Deadline,
    ) -> Result<(), Outcome> {
        let caller = self.authenticate(authorization, deadline).await?;
        // A PAT's row is confirmed on the table (the index may lag a
        // delete) and its request paid for before the ids are judged, as
        // NetBird's middleware does before its handler reads the path; with
        // valid ids, while the users are read: no extra round trip.
        let pat_use = async {
            match &caller.pat {
                Some(pat) => self.use_pat(pat, deadline).await,
                None => Ok(()),
            }
        };
        let (target_id, token_id) = match target.validated() {
            Ok(ids) => ids,
            Err(invalid) => {
                pat_use.await?;
                return Err(invalid.into());
            }
        };
        let (users, pat_use) = tokio::join!(self.users(&caller.user_id, &target_id, deadline), pat_use);
        pat_use?;
        let (caller_row, target_row) = users.map_err(storage_failed)?;
        self.note(Step::Users { caller: caller_row.as_ref(), target: target_row.as_ref() });
        let allowed = may_delete_token(caller_row.as_ref(), &target_id, target_row.as_ref()).map_err(|refusal| {
            Outcome::Refused { refusal, caller_id: caller.user_id.clone(), target_id: target_id.clone() }
        })?;
        self.note(Step::Allowed(allowed.grant));
        let (caller_row, target_row) = (allowed.caller, allowed.target);

        let deletion = self
            .store
            .delete_token(&target_id, &token_id, &caller_row.account_id, deadline)
            .await
            .map_err(storage_failed)?;
        self.note(Step::Deletion(&deletion));
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
                Err(Outcome::Internal(Cause::UnconfirmedDelete))
            }
        }
    }

    async fn authenticate(&self, authorization: Option<&HeaderValue>, deadline: &Deadline) -> Result<Caller, Outcome> {
        let credential = header::parse(authorization)?;
        self.note(Step::Credential(if matches!(credential, Credential::Jwt(_)) { "JWT" } else { "PAT" }));
        match credential {
            Credential::Jwt(token) => match self.jwt.verify(token, deadline).await {
                Ok(verified) => {
                    self.note(Step::Jwt(&verified));
                    Ok(Caller { user_id: verified.user_id, pat: None })
                }
                Err(JwtError::Refused(refused)) => Err(refused.into()),
                Err(err @ JwtError::KeysUnavailable(_)) => {
                    tracing::error!(error = %err, "a JWT could not be verified");
                    Err(Outcome::Internal(Cause::Keys))
                }
            },
            Credential::Pat(pat) => {
                let row = self
                    .store
                    .token_by_hash(&pat.hash(), deadline)
                    .await
                    .map_err(storage_failed)?
                    .ok_or(Reason::PatUnknown)?;
                self.note(Step::Pat(&row));
                let now = unix_seconds();
                if !row.is_live(now) {
                    let expired_seconds_ago = row.expires_at.map(|at| now.saturating_sub(at).unsigned_abs());
                    let shown =
                        Shown { token_id: Some(row.token_id.to_string()), expired_seconds_ago, ..Shown::default() };
                    return Err(Refused::new(Reason::PatExpired, shown).into());
                }
                // The index's copy of the bucket may be stale, never ahead:
                // a refusal from it needs no write.
                if self.bucket.is_some_and(|b| b.refuses(row.rate_limited_until, unix_millis())) {
                    return Err(Outcome::TooManyRequests);
                }
                Ok(Caller { user_id: row.user_id.clone(), pat: Some(row) })
            }
        }
    }

    /// Records a PAT's use (and pays for the request): a row deleted a
    /// moment ago refuses the PAT; an empty bucket, the request.
    async fn use_pat(&self, pat: &PersonalAccessToken, deadline: &Deadline) -> Result<(), Outcome> {
        let used = self.mark_used(pat, deadline).await.map_err(storage_failed)?;
        self.note(Step::PatUse(used));
        match used {
            PatUse::Marked => Ok(()),
            PatUse::Gone => {
                let shown = Shown { token_id: Some(pat.token_id.to_string()), ..Shown::default() };
                Err(Refused::new(Reason::PatDeleted, shown).into())
            }
            PatUse::Limited => Err(Outcome::TooManyRequests),
        }
    }

    /// Records the PAT's use on its row, paying for the request from its
    /// bucket when the rate limit is on: each payment [`Bucket::payments`]
    /// proposes is one conditional write, until one is taken.
    async fn mark_used(&self, pat: &PersonalAccessToken, deadline: &Deadline) -> Result<PatUse, StoreError> {
        let now = unix_millis();
        let Some(bucket) = &self.bucket else {
            let marked = self.store.record_use(pat, now, None, deadline).await?;
            return Ok(if marked { PatUse::Marked } else { PatUse::Gone });
        };
        for payment in bucket.payments(pat.rate_limited_until, now) {
            if self.store.record_use(pat, now, Some(payment), deadline).await? {
                return Ok(PatUse::Marked);
            }
        }
        Ok(PatUse::Limited)
    }

    /// The caller's and the target's rows, read at once (one round trip).
    async fn users(
        &self,
        caller_id: &UserId,
        target_id: &UserId,
        deadline: &Deadline,
    ) -> Result<(Option<User>, Option<User>), StoreError> {
        if caller_id == target_id {
            let user = self.store.user(caller_id, deadline).await?;
            return Ok((user.clone(), user));
        }
        tokio::try_join!(self.store.user(caller_id, deadline), self.store.user(target_id, deadline))
    }
}

fn storage_failed(err: StoreError) -> Outcome {
    tracing::error!(error = %err, "a storage call failed");
    Outcome::Internal(Cause::Storage)
}

/// `App::delete` on the in-memory store: every answer of the status table
/// that the app gives, and every way a delete can end, with the table and
/// the audit records afterwards. Whether DynamoDB applies the same
/// conditions is the store contract's to show (`tests/integration/store.rs`).
#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use serde_json::{json, Value};
    use tokio::time::Instant;

    use super::*;
    use crate::auth::pat;
    use crate::devkeys::DevKey;
    use crate::domain::policy::Refusal;
    use crate::domain::Role;
    use crate::storage::memory::{Call, Fault, MemoryStore};
    use crate::telemetry::records_of;

    pub const ISSUER: &str = "https://idp.test/";
    pub const AUDIENCE: &str = "netbird";
    pub const ACCOUNT: &str = "acc-1";
    const DAY: i64 = 86_400;
    /// The time a request has, unless a test says otherwise.
    const BUDGET: Duration = Duration::from_secs(5);

    /// A delete's answer, and the records written meanwhile.
    type Answer = (Result<(), Outcome>, Vec<Value>);

    pub struct Account {
        pub app: Arc<App<MemoryStore>>,
        pub store: Arc<MemoryStore>,
        pub key: DevKey,
    }

    /// The settings of these tests, `settings` added.
    pub fn config(key: &DevKey, settings: &[(&str, &str)]) -> Config {
        let jwks = key.jwks_json().unwrap();
        let base = [
            ("TOKENS_TABLE", "tokens"),
            ("USERS_TABLE", "users"),
            ("AUTH_ISSUER", ISSUER),
            ("AUTH_AUDIENCE", AUDIENCE),
            ("AUTH_JWKS", &jwks),
        ];
        let vars: HashMap<&str, &str> = base.iter().chain(settings).copied().collect();
        Config::from_lookup(|name| vars.get(name).map(|v| v.to_string())).unwrap()
    }

    /// Owner `o`, admin `a`, network admin `n`, user `u`, service user `s`
    /// ("ci-bot"), each with a token `<id>-t`; `x`, an owner in another
    /// account, with `x-t`. `settings` are added to the function's.
    pub fn account(settings: &[(&str, &str)]) -> Account {
        let key = DevKey::generate_es256("k").unwrap();
        let store = Arc::new(MemoryStore::default());
        let app = Arc::new(App::new(&config(&key, settings), store.clone()).unwrap());
        let account = Account { app, store, key };
        for (id, role) in [("o", "owner"), ("a", "admin"), ("n", "network_admin"), ("u", "user"), ("s", "user")] {
            account.user(id, ACCOUNT, role, |_| {});
            account.token(id, &format!("{id}-t"), Some(unix_seconds() + DAY));
        }
        account
            .user("s", ACCOUNT, "user", |u| (u.is_service_user, u.service_user_name) = (true, Some("ci-bot".into())));
        account.user("x", "acc-2", "owner", |_| {});
        account.token("x", "x-t", Some(unix_seconds() + DAY));
        account
    }

    impl Account {
        pub fn user(&self, id: &str, account: &str, role: &str, change: impl FnOnce(&mut User)) {
            let mut user = User {
                user_id: id.into(),
                account_id: account.into(),
                role: Role::parse(role),
                is_service_user: false,
                service_user_name: None,
                blocked: false,
                pending_approval: false,
            };
            change(&mut user);
            self.store.put_user(user);
        }

        /// A token of `user` in the user's account; the `Authorization` header that presents its PAT.
        pub fn token(&self, user: &str, token_id: &str, expires_at: Option<i64>) -> String {
            let plain = pat::generate().unwrap();
            let account = if user == "x" { "acc-2" } else { ACCOUNT };
            self.store.put_token(PersonalAccessToken {
                user_id: user.into(),
                token_id: token_id.into(),
                account_id: account.into(),
                name: format!("name of {token_id}"),
                hashed_token: pat::hash_token(&plain),
                expires_at,
                created_at: Some(unix_seconds()),
                created_by: Some(user.into()),
                last_used: None,
                rate_limited_until: None,
            });
            format!("Token {plain}")
        }

        pub fn jwt(&self, sub: &str) -> String {
            self.jwt_with(json!({ "sub": sub }))
        }

        pub fn jwt_with(&self, claims: Value) -> String {
            let now = unix_seconds();
            let mut all = json!({ "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600 });
            all.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
            format!("Bearer {}", self.key.sign(&all).unwrap())
        }

        pub fn keys(&self) -> Vec<(String, String)> {
            self.store.tokens().iter().map(|t| (t.user_id.to_string(), t.token_id.to_string())).collect()
        }

        /// `auth` deleting `user`'s `token` within `budget`.
        async fn delete_within(&self, auth: Option<&str>, user: &str, token: &str, budget: Duration) -> Answer {
            let header = auth.map(|a| HeaderValue::from_str(a).unwrap());
            let target = Target::new(Some(user.to_owned()), Some(token.to_owned()));
            records_of(self.app.delete(header.as_ref(), target, &Deadline::after(budget))).await
        }

        async fn delete(&self, authorization: Option<&str>, user: &str, token: &str) -> Result<(), Outcome> {
            self.delete_within(authorization, user, token, BUDGET).await.0
        }
    }

    fn refused(refusal: Refusal, caller: &str, target: &str) -> Result<(), Outcome> {
        Err(Outcome::Refused { refusal, caller_id: caller.into(), target_id: target.into() })
    }

    /// The reason of a 401, for comparing answers without their shown values.
    fn reason(reason: Reason) -> Result<(), Outcome> {
        Err(reason.into())
    }

    fn internal(cause: Cause) -> Result<(), Outcome> {
        Err(Outcome::Internal(cause))
    }

    fn without_shown(result: Result<(), Outcome>) -> Result<(), Outcome> {
        let Err(Outcome::Unauthenticated(refused)) = result else { return result };
        Err(refused.reason.into())
    }

    fn without(keys: Vec<(String, String)>, user: &str, token: &str) -> Vec<(String, String)> {
        keys.into_iter().filter(|k| *k != (user.to_owned(), token.to_owned())).collect()
    }

    #[tokio::test]
    async fn every_refusal_of_the_status_table_leaves_every_token_in_place() {
        let account = account(&[]);
        account.user("b", ACCOUNT, "owner", |u| u.blocked = true);
        account.user("p", ACCOUNT, "owner", |u| (u.blocked, u.pending_approval) = (true, true));
        account.user("r", ACCOUNT, "auditor", |_| {});
        account.user("m", ACCOUNT, "mystery", |_| {});
        let expired = account.token("o", "o-old", Some(unix_seconds() - 1));
        let forever = account.token("o", "o-forever", None);
        let unknown = format!("Token {}", pat::generate().unwrap());
        let before = account.keys();
        let jwt = |sub: &str| Some(account.jwt(sub));
        for (authorization, user, token, want) in [
            (None, "o", "o-t", reason(Reason::HeaderAbsent)),
            (Some("Basic bzpw".into()), "o", "o-t", reason(Reason::UnknownScheme)),
            (Some("Bearer not.a.jwt".into()), "o", "o-t", reason(Reason::JwtMalformed)),
            (Some(expired.clone()), "o", "o-t", reason(Reason::PatExpired)),
            (Some(forever), "o", "o-t", reason(Reason::PatExpired)),
            (Some(unknown), "o", "o-t", reason(Reason::PatUnknown)),
            (jwt("o"), "o/x", "o-t", Err(Outcome::InvalidUserId)),
            (jwt("o"), "o", "\u{202E}t", Err(Outcome::InvalidTokenId)),
            (jwt("ghost"), "o", "o-t", refused(Refusal::CallerNotFound, "ghost", "o")),
            (jwt("b"), "b", "o-t", refused(Refusal::CallerBlocked, "b", "b")),
            (jwt("p"), "p", "o-t", refused(Refusal::CallerPendingApproval, "p", "p")),
            (jwt("u"), "u", "u-t", refused(Refusal::PermissionDenied, "u", "u")),
            (jwt("r"), "r", "r-t", refused(Refusal::PermissionDenied, "r", "r")),
            (jwt("m"), "m", "m-t", refused(Refusal::PermissionDenied, "m", "m")),
            (jwt("o"), "nobody", "t", refused(Refusal::TargetNotFound, "o", "nobody")),
            (jwt("o"), "x", "x-t", refused(Refusal::PermissionDenied, "o", "x")),
            (jwt("a"), "o", "o-t", refused(Refusal::AdminRequired, "a", "o")),
            (jwt("n"), "s", "s-t", refused(Refusal::AdminRequired, "n", "s")),
            (jwt("o"), "o", "missing", Err(Outcome::TokenNotFound("missing".into()))),
            // The id exists, but under another user: simply not found.
            (jwt("o"), "o", "a-t", Err(Outcome::TokenNotFound("a-t".into()))),
        ] {
            let (got, records) = account.delete_within(authorization.as_deref(), user, token, BUDGET).await;
            assert_eq!(without_shown(got), want, "{authorization:?} deleting {user}/{token}");
            assert_eq!(records, Vec::<Value>::new(), "nothing deleted, nothing audited");
        }
        assert_eq!(account.keys(), before);
        let got = account.delete(Some(&expired), "o", "o-t").await;
        let Err(Outcome::Unauthenticated(expired)) = got else { panic!("not refused: {got:?}") };
        assert_eq!(expired.shown.token_id.as_deref(), Some("o-old"), "the log says which token expired");
        assert!(expired.shown.expired_seconds_ago.is_some_and(|ago| ago < 60));
    }

    #[tokio::test]
    async fn owners_delete_their_own_and_admins_their_service_users_tokens() {
        let account = account(&[]);
        let before = account.keys();
        let (got, records) = account.delete_within(Some(&account.jwt("o")), "o", "o-t", BUDGET).await;
        assert_eq!(got, Ok(()));
        let [audit] = &records[..] else { panic!("one audit record: {records:?}") };
        assert_eq!((audit["activity"].as_u64(), audit["result"].as_str()), (Some(42), Some("deleted")));
        assert_eq!((audit["initiator_id"].as_str(), audit["target_id"].as_str()), (Some("o"), Some("o")));
        assert_eq!((audit["token_id"].as_str(), audit["meta.name"].as_str()), (Some("o-t"), Some("name of o-t")));
        assert_eq!(audit["level"], "INFO");
        assert_eq!(account.keys(), without(before, "o", "o-t"));

        let admin_pat = account.token("a", "a-login", Some(unix_seconds() + DAY));
        let before = account.keys();
        let (got, records) = account.delete_within(Some(&admin_pat), "s", "s-t", BUDGET).await;
        assert_eq!(got, Ok(()));
        assert_eq!(
            (records[0]["meta.is_service_user"].as_bool(), records[0]["meta.user_name"].as_str()),
            (Some(true), Some("ci-bot"))
        );
        assert_eq!(account.keys(), without(before, "s", "s-t"));
        let login = account.store.token("a", "a-login").unwrap();
        assert!((unix_seconds() - login.last_used.unwrap()).abs() < 10, "the PAT's use is recorded");
        assert_eq!(login.rate_limited_until, None, "with the rate limit off, no bucket is written");
        // A PAT may delete itself: the use is recorded first, and the
        // delete leaves no row behind.
        let own = account.token("o", "o-self", Some(unix_seconds() + DAY));
        assert_eq!(account.delete(Some(&own), "o", "o-self").await, Ok(()));
        assert!(account.store.token("o", "o-self").is_none());
    }

    /// A PAT deleted a moment ago, still in the lagging index: refused
    /// whatever its ids, as its use is confirmed before they are judged.
    #[tokio::test]
    async fn a_pat_deleted_after_the_index_found_it_is_refused_whatever_the_ids() {
        let account = account(&[]);
        let leaked = account.token("o", "o-leaked", Some(unix_seconds() + DAY));
        account.store.remove_token("o", "o-leaked");
        let before = account.keys();
        for (user, token) in [("o", "o-t"), ("o/x", "o-t"), ("o", "")] {
            assert_eq!(without_shown(account.delete(Some(&leaked), user, token).await), reason(Reason::PatDeleted));
        }
        assert_eq!(account.keys(), before);
    }

    #[tokio::test]
    async fn a_jwt_in_no_allowed_group_is_refused() {
        let account = account(&[("AUTH_JWT_GROUPS_CLAIM", "groups"), ("AUTH_JWT_ALLOW_GROUPS", "admins, ops")]);
        let outsider = account.jwt_with(json!({ "sub": "o", "groups": ["staff"] }));
        assert_eq!(without_shown(account.delete(Some(&outsider), "o", "o-t").await), reason(Reason::JwtNoAllowedGroup));
        assert!(account.store.token("o", "o-t").is_some());
        let member = account.jwt_with(json!({ "sub": "o", "groups": ["staff", "ops"] }));
        assert_eq!(account.delete(Some(&member), "o", "o-t").await, Ok(()));
        assert!(account.store.token("o", "o-t").is_none());
    }

    /// NetBird's rate limit, its time as an input: the bucket's full-time in
    /// the token's row is moved back to stand for the time that passed. A
    /// request pays before its ids are judged, as in NetBird.
    #[tokio::test]
    async fn a_pats_bucket_refuses_past_its_burst_and_refills_whatever_the_ids() {
        let account = account(&[
            ("NB_API_RATE_LIMITING_ENABLED", "true"),
            ("NB_API_RATE_LIMITING_RPM", "1"),
            ("NB_API_RATE_LIMITING_BURST", "3"),
        ]);
        let pat = account.token("o", "o-login", Some(unix_seconds() + DAY));
        let knock = |user: &'static str| account.delete(Some(&pat), user, "nope");
        let not_found = Err(Outcome::TokenNotFound("nope".into()));
        // Invalid ids pay too: the index's copy stays stale ("full"), so each
        // write checks the table.
        assert_eq!(knock("o/x").await, Err(Outcome::InvalidUserId));
        assert_eq!(knock("\u{202E}").await, Err(Outcome::InvalidUserId));
        assert_eq!(knock("o").await, not_found);
        assert_eq!(knock("o/x").await, Err(Outcome::TooManyRequests));
        let row = account.store.token("o", "o-login").unwrap();
        // Once the index has caught up, its copy refuses with no write.
        account.store.settle();
        account.store.fail_next(Call::RecordUse, Fault::Fails);
        assert_eq!(knock("o").await, Err(Outcome::TooManyRequests), "refused from the copy: no write was tried");
        assert_eq!(account.store.token("o", "o-login").unwrap(), row, "a refusal writes nothing");
        // A minute later one request's worth is back.
        let full_at = row.rate_limited_until.unwrap();
        account.store.put_token(PersonalAccessToken { rate_limited_until: Some(full_at - 60_000), ..row.clone() });
        // The write planned to fail was never tried above; now it is.
        assert_eq!(knock("o").await, internal(Cause::Storage));
        assert_eq!(knock("o").await, not_found);
        assert_eq!(knock("o").await, Err(Outcome::TooManyRequests));
        // With the limit on, a PAT deleted a moment ago meets a write that
        // fails alike: 429.
        account.store.remove_token("o", "o-login");
        assert_eq!(knock("o").await, Err(Outcome::TooManyRequests));
        // JWTs are never limited.
        for _ in 0..3 {
            assert_eq!(account.delete(Some(&account.jwt("o")), "o", "nope").await, not_found);
        }
    }

    /// The round trips a request makes one after another, the clock
    /// stopped: every call takes the same time, so a request takes that
    /// time once per round. A PAT's use is recorded beside the user reads,
    /// and before ids it refuses (spec §2, §9).
    #[tokio::test(start_paused = true)]
    async fn the_round_trips_of_each_path() {
        let account = account(&[]);
        let round = Duration::from_millis(10);
        account.store.set_latency(round);
        let pat = account.token("o", "o-login", Some(unix_seconds() + DAY));
        for (authorization, user, token, rounds, answer) in [
            (account.jwt("o"), "o", "o-t", 2, Ok(())),
            (account.jwt("a"), "s", "s-t", 2, Ok(())),
            (pat.clone(), "o", "x", 3, Err(Outcome::TokenNotFound("x".into()))),
            (pat, "o/x", "x", 2, Err(Outcome::InvalidUserId)),
        ] {
            let started = Instant::now();
            assert_eq!(account.delete(Some(&authorization), user, token).await, answer, "{user}/{token}");
            assert_eq!(started.elapsed(), round * rounds, "{user}/{token}");
        }
    }

    /// Every way a delete can end once the checks passed (spec §7): the
    /// answer, whether the row is gone, the audit record. The clock is
    /// tokio's, stopped: a call that hangs takes its whole budget without a
    /// real wait.
    #[tokio::test(start_paused = true)]
    async fn every_way_a_delete_can_end() {
        let unconfirmed = internal(Cause::UnconfirmedDelete);
        for (what, fault, want, gone, audit) in [
            ("applied, answer read", None, Ok(()), true, Some(("deleted", "name of o-t"))),
            ("refused", Some(Fault::Fails), internal(Cause::Storage), false, None),
            ("answer lost", Some(Fault::AnswerLost), unconfirmed.clone(), true, Some(("unknown", ""))),
            ("answer cut after 2xx", Some(Fault::AnswerCut), unconfirmed.clone(), true, Some(("deleted", ""))),
            ("no answer before the deadline", Some(Fault::Hangs), unconfirmed, false, Some(("unknown", ""))),
        ] {
            let account = account(&[]);
            if let Some(fault) = fault {
                account.store.fail_next(Call::Delete, fault);
            }
            let (started, budget) = (Instant::now(), Duration::from_millis(400));
            let (got, records) = account.delete_within(Some(&account.jwt("o")), "o", "o-t", budget).await;
            assert_eq!(got, want, "{what}");
            assert!(started.elapsed() <= budget, "{what}: answered by its deadline");
            assert_eq!(account.store.token("o", "o-t").is_none(), gone, "{what}");
            let audit_got: Vec<(&str, &str)> =
                records.iter().map(|r| (r["result"].as_str().unwrap(), r["meta.name"].as_str().unwrap())).collect();
            assert_eq!(audit_got, audit.into_iter().collect::<Vec<_>>(), "{what}");
        }
    }

    /// The reads take the time: too little is left to send the delete, and
    /// it is not sent. The row stays and nothing is audited.
    #[tokio::test(start_paused = true)]
    async fn a_delete_with_too_little_time_left_is_not_sent() {
        let account = account(&[]);
        account.store.set_latency(Duration::from_millis(150));
        let (got, records) =
            account.delete_within(Some(&account.jwt("o")), "o", "o-t", Duration::from_millis(200)).await;
        assert_eq!(got, internal(Cause::Storage));
        assert!(account.store.token("o", "o-t").is_some());
        assert_eq!(records, Vec::<Value>::new());
    }

    #[tokio::test]
    async fn a_failing_table_is_a_500_that_deletes_nothing() {
        for call in [Call::User, Call::TokenByHash, Call::RecordUse] {
            let account = account(&[]);
            let pat = account.token("o", "o-login", Some(unix_seconds() + DAY));
            let before = account.keys();
            account.store.fail_next(call, Fault::Fails);
            assert_eq!(account.delete(Some(&pat), "o", "o-t").await, internal(Cause::Storage), "{call:?}");
            assert_eq!(account.keys(), before, "{call:?}");
        }
    }

    /// Keys that cannot be had: a 500 naming its cause; PATs still served.
    #[tokio::test]
    async fn a_jwt_whose_keys_cannot_be_had_is_a_500_and_a_pat_is_served() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let nowhere = format!("http://{}/keys", closed.local_addr().unwrap());
        drop(closed);
        let account = account(&[("AUTH_JWKS", ""), ("AUTH_KEYS_LOCATION", &nowhere)]);
        assert_eq!(account.delete(Some(&account.jwt("o")), "o", "o-t").await, internal(Cause::Keys));
        assert!(account.store.token("o", "o-t").is_some());
        let pat = account.token("o", "o-login", Some(unix_seconds() + DAY));
        assert_eq!(account.delete(Some(&pat), "o", "o-t").await, Ok(()));
    }
}
