//! Where verification gets its keys (spec §6): inline (`AUTH_JWKS`), or
//! from the identity provider (the key set's URL, or the `jwks_uri` of its
//! OpenID configuration), cached twice: in this instance's memory, and in
//! one DynamoDB item shared by every instance ([`SharedKeyCache`]), so the
//! fleet asks the provider about once per cache lifetime instead of once
//! per cold start.
//!
//! Nothing here makes a request wait for the provider unless it must: init
//! reads the shared cache and, when that is stale or empty, refreshes in
//! the background; a request whose key is in a set past its lifetime (but
//! within the stale limit) is verified at once while the set is refreshed
//! behind it. Only a JWT whose key the instance does not hold waits, and
//! never past its deadline: every call it waits on takes its timeout from
//! the request's [`Deadline`], and so does its wait for a refresh already
//! under way. A background refresh has no request's deadline and keeps the
//! clients' own timeouts.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::Deserialize;

use crate::auth::fetch::Fetcher;
use crate::auth::keys::{JwksError, KeySet};
use crate::clock::{millis, unix_millis as now_ms};
use crate::config::{AuthConfig, KeySource, KeyUrl};
use crate::deadline::Deadline;
use crate::domain::store::StoreError;
use crate::telemetry::KeyRefreshFailure;

/// `max-age` when the provider sends none, and the bounds it is clamped to.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
const MIN_MAX_AGE: Duration = Duration::from_secs(30);
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// How long past its lifetime a key set that cannot be refreshed still serves.
pub const MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// A shared entry fetched later than this ahead of the clock that judges
/// it is not believed (it would stay fresh too long).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The latest `fetchedAt` a shared entry may claim and still be believed,
/// judged at `judged_at_ms`: by this instance's clock when it reads the
/// cache, by a fresh fetch's time when it writes it.
pub fn believable_until(judged_at_ms: u64) -> u64 {
    judged_at_ms.saturating_add(millis(MAX_CLOCK_SKEW))
}

/// How often one instance may ask the shared cache and the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gaps {
    /// Between fetches from the provider once keys are held.
    pub refetch: Duration,
    /// Between fetches while no key set has ever been held.
    pub retry: Duration,
    /// Between reads of the shared cache for a key not yet seen: tokens
    /// with made-up `kid`s cost at most one read per gap.
    pub shared_read: Duration,
}

impl Default for Gaps {
    fn default() -> Self {
        Gaps { refetch: Duration::from_secs(30), retry: Duration::from_secs(1), shared_read: Duration::from_secs(5) }
    }
}

/// A key set as the shared cache holds it: the provider's document as it
/// was fetched, when, and for how long it is fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedKeySet {
    pub document: String,
    pub fetched_at_ms: u64,
    pub max_age_secs: u64,
}

impl CachedKeySet {
    /// Whether this set, just fetched, replaces `held` in the shared cache:
    /// `held` was fetched earlier, or claims a time too far ahead to be
    /// believed. A newer believable set is never replaced.
    pub fn replaces(&self, held: &CachedKeySet) -> bool {
        held.fetched_at_ms < self.fetched_at_ms || held.fetched_at_ms > believable_until(self.fetched_at_ms)
    }
}

/// The cache every instance shares (a DynamoDB item per key source, in
/// the store). Errors are for logs only.
pub trait SharedKeyCache: Send + Sync {
    fn load<'a>(
        &'a self,
        source: &'a str,
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<Option<CachedKeySet>, StoreError>>;

    /// Stores `entry` unless the cache holds one it does not
    /// [replace](CachedKeySet::replaces) (then `Ok(false)`): concurrent
    /// refreshes never replace a newer set, and an entry of the wrong shape
    /// or from the future never outlives the next fetch.
    fn store<'a>(
        &'a self,
        source: &'a str,
        entry: &'a CachedKeySet,
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// No usable key set for a request; the cause is for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeysUnavailable(pub String);

/// Where verification gets its keys.
pub enum Keys {
    Inline(Arc<KeySet>),
    Provider(Arc<ProviderKeys>),
}

impl Keys {
    /// The keys `config` names; a provider's keys shared through `shared`
    /// when given. Inline keys never touch it.
    pub fn new(config: &AuthConfig, shared: Option<Arc<dyn SharedKeyCache>>) -> Result<Self, JwksError> {
        let location = match &config.keys {
            KeySource::Inline(json) => return Ok(Keys::Inline(Arc::new(KeySet::parse(json.as_bytes())?))),
            KeySource::Url(url) => KeyLocation::Jwks(url.clone()),
            KeySource::Discovery(endpoint) => {
                KeyLocation::Discovery { endpoint: endpoint.clone(), issuer: config.issuer.clone() }
            }
        };
        Ok(Keys::Provider(Arc::new(ProviderKeys::new(location, shared, Gaps::default())?)))
    }

    /// The key set to verify a token naming `kid` with, within `deadline`.
    pub async fn current(&self, kid: Option<&str>, deadline: &Deadline) -> Result<Arc<KeySet>, KeysUnavailable> {
        match self {
            Keys::Inline(keys) => Ok(keys.clone()),
            Keys::Provider(provider) => provider.current(kid, deadline).await,
        }
    }

    /// At init: the shared cache's entry, read now; the provider asked in
    /// the background only if that entry is missing, unusable or stale.
    pub async fn warm_up(&self) {
        if let Keys::Provider(provider) = self {
            provider.warm_up().await;
        }
    }

    /// Whether [`Keys::warm_up`] reads the shared cache (one DynamoDB call).
    pub fn reads_shared_cache(&self) -> bool {
        matches!(self, Keys::Provider(provider) if provider.shared.is_some())
    }
}

/// Where a provider's keys live.
#[derive(Debug, Clone)]
pub enum KeyLocation {
    /// The key set's own URL.
    Jwks(KeyUrl),
    /// The provider's OpenID configuration, whose `issuer` must be `issuer`.
    Discovery { endpoint: KeyUrl, issuer: String },
}

impl KeyLocation {
    /// The shared cache's key for this location, from the settings as
    /// written (so the template can name it in the role's policy): a
    /// changed setting never reads another source's keys.
    pub fn cache_key(&self) -> String {
        match self {
            KeyLocation::Jwks(url) => format!("jwks {}", url.as_str()),
            KeyLocation::Discovery { endpoint, issuer } => format!("oidc {} {issuer}", endpoint.as_str()),
        }
    }
}

pub struct ProviderKeys {
    location: KeyLocation,
    cache_key: String,
    gaps: Gaps,
    fetcher: Fetcher,
    shared: Option<Arc<dyn SharedKeyCache>>,
    state: RwLock<State>,
    /// Held by whoever refreshes: one refresh at a time.
    refresh: Arc<tokio::sync::Mutex<()>>,
}

/// Whether a refresh reads the shared cache before asking the provider.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shared {
    Read,
    /// It was read a moment ago.
    Skip,
}

/// What this instance holds.
#[derive(Default, Clone)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// When the provider served the set, and until when it is fresh (Unix ms).
    fetched_at_ms: u64,
    fresh_until_ms: u64,
    last_fetch: Option<Instant>,
    last_shared_read: Option<Instant>,
    /// Why the last fetch from the provider failed, until one succeeds.
    last_error: Option<String>,
}

impl State {
    fn knows(&self, kid: Option<&str>) -> bool {
        self.keys.as_ref().is_some_and(|keys| kid.is_none_or(|kid| keys.has_kid(kid)))
    }

    fn fresh(&self, kid: Option<&str>, now_ms: u64) -> Option<Arc<KeySet>> {
        (now_ms < self.fresh_until_ms && self.knows(kid)).then(|| self.keys.clone()).flatten()
    }

    /// The set while fresh, or past its lifetime by less than [`MAX_STALE`].
    fn servable(&self, now_ms: u64) -> Option<Arc<KeySet>> {
        let limit = self.fresh_until_ms.saturating_add(millis(MAX_STALE));
        (now_ms < limit).then(|| self.keys.clone()).flatten()
    }

    /// How far past its lifetime the set is at `now_ms` (zero while fresh);
    /// with no set at all, the whole stale limit: JWTs already fail.
    fn stale_for(&self, now_ms: u64) -> Duration {
        match self.keys {
            Some(_) => Duration::from_millis(now_ms.saturating_sub(self.fresh_until_ms)),
            None => MAX_STALE,
        }
    }

    fn may_fetch(&self, now: Instant, gaps: &Gaps) -> bool {
        let gap = if self.keys.is_some() { gaps.refetch } else { gaps.retry };
        self.last_fetch.is_none_or(|at| now.saturating_duration_since(at) >= gap)
    }

    fn may_read_shared(&self, now: Instant, gaps: &Gaps) -> bool {
        self.last_shared_read.is_none_or(|at| now.saturating_duration_since(at) >= gaps.shared_read)
    }

    /// Why a request gets no usable key set.
    fn unavailable(&self, now_ms: u64) -> KeysUnavailable {
        let why = self.last_error.as_deref().unwrap_or("no key set has been fetched yet");
        KeysUnavailable(match &self.keys {
            None => format!("no key set from the identity provider: {why}"),
            Some(_) if self.servable(now_ms).is_none() => {
                format!("the identity provider's keys expired over 24 h ago and cannot be refreshed: {why}")
            }
            Some(_) => format!("the token's key is not in the key set held, which cannot be refreshed: {why}"),
        })
    }
}

impl ProviderKeys {
    pub fn new(location: KeyLocation, shared: Option<Arc<dyn SharedKeyCache>>, gaps: Gaps) -> Result<Self, JwksError> {
        Ok(ProviderKeys {
            cache_key: location.cache_key(),
            location,
            gaps,
            fetcher: Fetcher::new().map_err(JwksError::HttpClient)?,
            shared,
            state: RwLock::default(),
            refresh: Arc::default(),
        })
    }

    fn snapshot(&self) -> State {
        self.state.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.write().unwrap_or_else(PoisonError::into_inner));
    }

    async fn warm_up(self: &Arc<Self>) {
        self.adopt_shared(&Deadline::Unknown).await;
        if self.snapshot().fresh(None, now_ms()).is_none() {
            // The shared cache was just read: straight to the provider.
            self.refresh_in_background(Shared::Skip);
        }
    }

    async fn current(self: &Arc<Self>, kid: Option<&str>, deadline: &Deadline) -> Result<Arc<KeySet>, KeysUnavailable> {
        let state = self.snapshot();
        if let Some(keys) = state.fresh(kid, now_ms()) {
            return Ok(keys);
        }
        // Past its lifetime but still servable, and holding this key: verify
        // now, refresh behind the request.
        if state.knows(kid) {
            if let Some(keys) = state.servable(now_ms()) {
                self.refresh_in_background(Shared::Read);
                return Ok(keys);
            }
        }
        // A key not held, or nothing servable: wait for a refresh, one at a
        // time; whoever waited first re-reads what the last one brought.
        let Some(_guard) = deadline.wait(self.refresh.lock()).await else {
            let why = "a refresh of the identity provider's keys already under way did not end before the deadline";
            return Err(KeysUnavailable(why.into()));
        };
        if let Some(keys) = self.snapshot().fresh(kid, now_ms()) {
            return Ok(keys);
        }
        self.refresh(kid, Shared::Read, deadline).await;
        let state = self.snapshot();
        match state.servable(now_ms()) {
            // The token's key, or a set fetched without error that lacks it
            // (the token then fails verification: 401).
            Some(keys) if state.knows(kid) || state.last_error.is_none() => Ok(keys),
            _ => Err(state.unavailable(now_ms())),
        }
    }

    /// Starts a refresh unless one is running; never waits.
    fn refresh_in_background(self: &Arc<Self>, shared: Shared) {
        let Ok(guard) = self.refresh.clone().try_lock_owned() else { return };
        let this = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            if this.snapshot().fresh(None, now_ms()).is_none() {
                this.refresh(None, shared, &Deadline::Unknown).await;
            }
        });
    }

    /// Under the refresh lock: the shared cache first (another instance may
    /// have fetched the set already), at most once per gap, then the
    /// provider, at most once per gap; what the provider gives goes to the
    /// shared cache.
    async fn refresh(&self, kid: Option<&str>, shared: Shared, deadline: &Deadline) {
        let now = Instant::now();
        if shared == Shared::Read && self.shared.is_some() && self.snapshot().may_read_shared(now, &self.gaps) {
            self.update(|s| s.last_shared_read = Some(now));
            self.adopt_shared(deadline).await;
            if self.snapshot().fresh(kid, now_ms()).is_some() {
                return;
            }
        }
        if !self.snapshot().may_fetch(now, &self.gaps) {
            return;
        }
        self.update(|s| s.last_fetch = Some(now));
        let (keys, entry) = match self.fetch_from_provider(deadline).await {
            Ok(fetched) => fetched,
            Err(err) => {
                let error = err.to_string();
                let stale_for = self.snapshot().stale_for(now_ms());
                KeyRefreshFailure { error: &error, configuration: err.is_configuration(), stale_for }.log();
                return self.update(|s| s.last_error = Some(error));
            }
        };
        self.install(Arc::new(keys), &entry);
        if let Some(shared) = &self.shared {
            match shared.store(&self.cache_key, &entry, deadline).await {
                Ok(true) => {}
                Ok(false) => tracing::debug!("the shared key cache already holds a newer set"),
                Err(err) => tracing::warn!(error = %err, "writing the shared key cache failed"),
            }
        }
    }

    /// Takes the shared cache's set when it is usable and newer than ours.
    async fn adopt_shared(&self, deadline: &Deadline) {
        let Some(shared) = &self.shared else { return };
        let entry = match shared.load(&self.cache_key, deadline).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return,
            Err(err) => return tracing::warn!(error = %err, "reading the shared key cache failed"),
        };
        if entry.fetched_at_ms <= self.snapshot().fetched_at_ms {
            return;
        }
        if entry.fetched_at_ms > believable_until(now_ms()) {
            return tracing::warn!("ignored the shared key cache's entry: fetched in the future");
        }
        match KeySet::parse(entry.document.as_bytes()) {
            Ok(keys) => self.install(Arc::new(keys), &entry),
            Err(err) => tracing::warn!(error = %err, "ignored the shared key cache's entry: not a usable key set"),
        }
    }

    fn install(&self, keys: Arc<KeySet>, entry: &CachedKeySet) {
        let lifetime = Duration::from_secs(entry.max_age_secs).clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        self.update(|s| {
            s.keys = Some(keys);
            s.fetched_at_ms = entry.fetched_at_ms;
            s.fresh_until_ms = entry.fetched_at_ms.saturating_add(millis(lifetime));
            s.last_error = None;
        });
    }

    /// The key set from the provider (discovery first, when configured),
    /// checked usable, and as the shared cache stores it.
    async fn fetch_from_provider(&self, deadline: &Deadline) -> Result<(KeySet, CachedKeySet), JwksError> {
        let discovered;
        let url = match &self.location {
            KeyLocation::Jwks(url) => url,
            KeyLocation::Discovery { endpoint, issuer } => {
                discovered = discover(&self.fetcher, endpoint, issuer, deadline).await?;
                &discovered
            }
        };
        let fetched = self.fetcher.get(url, deadline).await.map_err(|e| JwksError::Fetch("the key set", e))?;
        let max_age = fetched.max_age.unwrap_or(DEFAULT_MAX_AGE).clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        let keys = KeySet::parse(&fetched.body)?;
        // JSON that parsed is UTF-8: the conversion loses nothing.
        let document = String::from_utf8_lossy(&fetched.body).into_owned();
        Ok((keys, CachedKeySet { document, fetched_at_ms: now_ms(), max_age_secs: max_age.as_secs() }))
    }
}

#[derive(Deserialize)]
struct OpenIdConfiguration {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// The `jwks_uri` of the provider's OpenID configuration at `endpoint`,
/// whose `issuer` must be `issuer` (a configuration without one is refused
/// like one that names another).
async fn discover(
    fetcher: &Fetcher,
    endpoint: &KeyUrl,
    issuer: &str,
    deadline: &Deadline,
) -> Result<KeyUrl, JwksError> {
    let fetched = fetcher.get(endpoint, deadline).await.map_err(|e| JwksError::Fetch("the OpenID configuration", e))?;
    keys_url_of(&fetched.body, endpoint, issuer)
}

/// The key set's URL in the OpenID configuration `document`, served at
/// `endpoint`, checked against `issuer`.
fn keys_url_of(document: &[u8], endpoint: &KeyUrl, issuer: &str) -> Result<KeyUrl, JwksError> {
    let config: OpenIdConfiguration =
        serde_json::from_slice(document).map_err(|e| JwksError::Discovery(e.to_string()))?;
    let found = config.issuer.unwrap_or_default();
    if found != issuer {
        return Err(JwksError::IssuerMismatch { expected: issuer.to_owned(), found });
    }
    let jwks_uri = config.jwks_uri.ok_or_else(|| JwksError::Discovery("it has no jwks_uri".into()))?;
    // A document from a real provider may not point the function at a
    // service on its own machine (the Lambda Runtime API listens there).
    KeyUrl::parse(&jwks_uri)
        .filter(|url| !url.is_loopback() || endpoint.is_loopback())
        .ok_or(JwksError::BadJwksUri(jwks_uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = r#"{"kty":"RSA","kid":"r","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}"#;

    #[test]
    fn a_discovered_key_url_is_https_and_never_this_machine_unless_discovery_is() {
        let remote = KeyUrl::parse("https://idp.example/.well-known/openid-configuration").unwrap();
        let local = KeyUrl::parse("http://127.0.0.1:8080/.well-known/openid-configuration").unwrap();
        let doc = |issuer: Option<&str>, jwks_uri: &str| {
            let mut doc = serde_json::json!({ "jwks_uri": jwks_uri });
            if let Some(issuer) = issuer {
                doc["issuer"] = issuer.into();
            }
            doc.to_string().into_bytes()
        };
        let issuer = Some("https://idp.example/");
        let url = |doc: &[u8], endpoint| keys_url_of(doc, endpoint, "https://idp.example/");
        assert!(url(&doc(issuer, "https://idp.example/keys"), &remote).is_ok());
        for hostile in [
            "http://idp.example/keys",
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "https://localhost/keys",
            "http://[::1]/keys",
        ] {
            assert!(matches!(url(&doc(issuer, hostile), &remote), Err(JwksError::BadJwksUri(_))), "{hostile}");
        }
        assert!(url(&doc(issuer, "http://127.0.0.1:8080/keys"), &local).is_ok(), "local development");
        let missing = url(&doc(None, "https://idp.example/keys"), &remote);
        assert!(matches!(missing, Err(JwksError::IssuerMismatch { .. })), "no issuer is no match");
        assert!(missing.unwrap_err().is_configuration());
    }

    #[test]
    fn stale_keys_serve_for_a_day_at_most() {
        let keys = Arc::new(KeySet::parse(format!(r#"{{"keys":[{RSA}]}}"#).as_bytes()).unwrap());
        let state = State { keys: Some(keys), fetched_at_ms: 1_000, fresh_until_ms: 5_000, ..State::default() };
        assert!(state.fresh(Some("r"), 4_999).is_some());
        assert!(state.fresh(Some("r"), 5_000).is_none());
        assert!(state.fresh(Some("other"), 4_999).is_none(), "a key it does not hold is not fresh");
        assert!(state.servable(5_000 + millis(MAX_STALE) - 1).is_some());
        assert!(state.servable(5_000 + millis(MAX_STALE)).is_none());
        let far = State { fresh_until_ms: u64::MAX, ..state };
        assert!(far.servable(u64::MAX - 1).is_some(), "no overflow");
    }

    #[test]
    fn gaps_are_judged_on_the_time_given() {
        let gaps = Gaps::default();
        let t0 = Instant::now();
        let never = State::default();
        assert!(never.may_fetch(t0, &gaps) && never.may_read_shared(t0, &gaps));
        let tried = State { last_fetch: Some(t0), last_shared_read: Some(t0), ..State::default() };
        assert!(!tried.may_fetch(t0 + gaps.retry - Duration::from_millis(1), &gaps));
        assert!(tried.may_fetch(t0 + gaps.retry, &gaps), "no keys yet: the short retry gap");
        let keys = Some(Arc::new(KeySet::parse(format!(r#"{{"keys":[{RSA}]}}"#).as_bytes()).unwrap()));
        let held = State { keys, ..tried.clone() };
        assert!(!held.may_fetch(t0 + gaps.refetch - Duration::from_millis(1), &gaps), "keys held: the refetch gap");
        assert!(held.may_fetch(t0 + gaps.refetch, &gaps));
        assert!(!tried.may_read_shared(t0 + gaps.shared_read - Duration::from_millis(1), &gaps));
        assert!(tried.may_read_shared(t0 + gaps.shared_read, &gaps));
        assert!(!tried.may_fetch(t0 - Duration::from_secs(1), &gaps), "a clock that went back is no gap");
    }

    #[test]
    fn staleness_is_zero_while_fresh_and_the_whole_limit_without_keys() {
        let keys = Some(Arc::new(KeySet::parse(format!(r#"{{"keys":[{RSA}]}}"#).as_bytes()).unwrap()));
        let held = State { keys, fresh_until_ms: 10_000, ..State::default() };
        assert_eq!(held.stale_for(9_000), Duration::ZERO);
        assert_eq!(held.stale_for(70_000), Duration::from_secs(60));
        assert_eq!(State::default().stale_for(70_000), MAX_STALE);
    }

    #[test]
    fn a_fetched_set_replaces_an_older_or_unbelievable_one_never_a_newer() {
        let at = |fetched_at_ms| CachedKeySet { document: "{}".into(), fetched_at_ms, max_age_secs: 60 };
        let fetched = at(1_000_000);
        assert!(fetched.replaces(&at(999_999)));
        assert!(!fetched.replaces(&at(1_000_000)), "the same time: keep it");
        assert!(!fetched.replaces(&at(1_000_000 + millis(MAX_CLOCK_SKEW))), "newer and believable");
        assert!(fetched.replaces(&at(1_000_001 + millis(MAX_CLOCK_SKEW))), "from the future");
        assert!(fetched.replaces(&at(u64::MAX)));
    }

    /// A provider that accepts connections and never answers.
    async fn silent_provider() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        (format!("http://{address}/.well-known/openid-configuration"), held)
    }

    fn discovery(endpoint: &str, shared: Option<Arc<dyn SharedKeyCache>>) -> Arc<ProviderKeys> {
        let location =
            KeyLocation::Discovery { endpoint: KeyUrl::parse(endpoint).unwrap(), issuer: "https://idp.test/".into() };
        Arc::new(ProviderKeys::new(location, shared, Gaps::default()).unwrap())
    }

    #[tokio::test]
    async fn a_request_waits_for_a_silent_provider_no_longer_than_its_deadline() {
        let (endpoint, held) = silent_provider().await;
        let keys = discovery(&endpoint, None);
        let started = Instant::now();
        let deadline = Deadline::after(Duration::from_millis(300));
        let (got, records) = crate::telemetry::records_of(keys.current(Some("new"), &deadline)).await;
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        let cause = got.err().expect("no keys").0;
        assert!(cause.contains("the OpenID configuration") && cause.contains("no whole answer within"), "{cause}");
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(
            (records[0]["KeyRefreshFailures"].as_u64(), records[0]["KeysStale"].as_u64()),
            (Some(1), Some(86_400))
        );
        assert_eq!(records[0]["level"], "WARN");
        held.abort();
    }

    #[tokio::test]
    async fn a_request_never_waits_on_a_background_refresh_past_its_deadline() {
        let (endpoint, held) = silent_provider().await;
        let keys = discovery(&endpoint, None);
        keys.warm_up().await; // a background refresh, on the clients' own 3 s
        tokio::task::yield_now().await;
        let started = Instant::now();
        let got = keys.current(Some("new"), &Deadline::after(Duration::from_millis(300))).await;
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        assert!(got.err().expect("no keys").0.contains("already under way"));
        held.abort();
    }

    #[tokio::test]
    async fn a_silent_shared_cache_is_bounded_by_the_deadline_too() {
        let store = Arc::new(crate::storage::memory::MemoryStore::default());
        let (endpoint, held) = silent_provider().await;
        let keys = discovery(&endpoint, Some(store.clone()));
        store.fail_next(crate::storage::memory::Call::LoadKeys, crate::storage::memory::Fault::Hangs);
        let started = Instant::now();
        assert!(keys.current(None, &Deadline::after(Duration::from_millis(300))).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        held.abort();
    }

    #[test]
    fn each_source_has_its_own_cache_key() {
        let url = KeyUrl::parse("https://idp.example/jwks").unwrap();
        let endpoint = KeyUrl::parse("https://idp.example/.well-known/openid-configuration").unwrap();
        let keys = [
            KeyLocation::Jwks(url.clone()).cache_key(),
            KeyLocation::Discovery { endpoint: endpoint.clone(), issuer: "https://idp.example/".into() }.cache_key(),
            KeyLocation::Discovery { endpoint, issuer: "https://other.example/".into() }.cache_key(),
        ];
        assert_eq!(keys.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "{keys:?}");
        // As written in the settings, which the template's policy names.
        assert_eq!(keys[0], "jwks https://idp.example/jwks");
        assert_eq!(keys[1], "oidc https://idp.example/.well-known/openid-configuration https://idp.example/");
    }
}
