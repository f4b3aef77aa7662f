//! The identity provider's signing keys (contract §6): inline, fetched from
//! `AUTH_KEYS_LOCATION`, or from the `jwks_uri` of the provider's OpenID
//! configuration; cached per `Cache-Control: max-age`.
//!
//! Each key carries the algorithms it may verify, taken from the key itself
//! (its `alg`, else its type and curve), never from a token's header: HMAC
//! and `none` can never be chosen by an attacker. A key the function cannot
//! use is skipped; the rest of the set still serves.

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::fetch::{FetchError, Fetcher};
use crate::config::KeyUrl;

/// Algorithms the function accepts at all (contract §2).
pub const SUPPORTED: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::ES256, Algorithm::ES384, Algorithm::PS256];

/// Keys tried for a token without `kid`: real key sets hold one to three
/// signing keys per algorithm.
pub const MAX_KIDLESS_CANDIDATES: usize = 3;
/// `max-age` when the server sends none, and the bounds it is clamped to.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
const MIN_MAX_AGE: Duration = Duration::from_secs(30);
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// How long past its expiry a key set that cannot be refreshed still serves.
const MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// Least time between fetches on an unknown `kid` once keys are cached.
const MIN_REFETCH_GAP: Duration = Duration::from_secs(30);
/// Gap between attempts while no key set has ever been fetched.
const MIN_RETRY_GAP: Duration = Duration::from_secs(1);

struct VerifyingKey {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The usable keys of one JWKS document.
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS is not a JSON object with a `keys` array: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the JWKS holds no usable signing key (RSA, or EC on P-256/P-384)")]
    NoUsableKey,
    #[error("fetching failed: {0}")]
    Fetch(#[from] FetchError),
    #[error("the OpenID configuration is unusable: {0}")]
    Discovery(String),
    #[error("the OpenID configuration's issuer {found:?} is not AUTH_ISSUER {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error(
        "the OpenID configuration's jwks_uri {0:?} is not an https:// URL (a loopback host only when the \
         configuration itself is served from one)"
    )]
    BadJwksUri(String),
}

impl JwksError {
    /// Errors that no retry can mend: the settings, or the provider's
    /// configuration, disagree with this function's rules.
    fn is_configuration(&self) -> bool {
        matches!(self, JwksError::IssuerMismatch { .. } | JwksError::BadJwksUri(_))
    }
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<Value>,
}

impl KeySet {
    pub fn parse(json: &[u8]) -> Result<Self, JwksError> {
        let raw: RawKeySet = serde_json::from_slice(json)?;
        let keys: Vec<VerifyingKey> = raw.keys.into_iter().filter_map(verifying_key).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(KeySet { keys })
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Keys that may verify a token with this `kid` and this algorithm. A
    /// token that names no `kid` is tried against the first
    /// [`MAX_KIDLESS_CANDIDATES`] keys of its algorithm only, so a large
    /// key set cannot make one request cost many signature checks.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>, alg: Algorithm) -> impl Iterator<Item = &'a DecodingKey> {
        let limit = if kid.is_some() { usize::MAX } else { MAX_KIDLESS_CANDIDATES };
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(move |k| k.algorithms.contains(&alg))
            .take(limit)
            .map(|k| &k.key)
    }
}

/// `value` as a key this function can verify with; anything else (another
/// key type, curve or algorithm, an encryption key, a malformed member) is
/// skipped with a debug line that names the key, never its material.
fn verifying_key(value: Value) -> Option<VerifyingKey> {
    let member = |name| value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (kid, kty, alg, crv) = (member("kid"), member("kty"), member("alg"), member("crv"));
    let skip = |reason: &str| tracing::debug!(kid, kty, alg, crv, reason, "skipped a key of the JWKS");
    let jwk: Jwk = match serde_json::from_value(value) {
        Ok(jwk) => jwk,
        Err(_) => {
            skip("not a JWK this function reads");
            return None;
        }
    };
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        skip("an encryption key");
        return None;
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => &[],
        },
        _ => &[],
    };
    let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
        None => by_type.to_vec(),
        Some(named) => by_type.iter().copied().filter(|a| same_algorithm(named, *a)).collect(),
    };
    if algorithms.is_empty() {
        skip("no supported algorithm");
        return None;
    }
    match DecodingKey::from_jwk(&jwk) {
        Ok(key) => Some(VerifyingKey { kid: jwk.common.key_id.clone(), key, algorithms }),
        Err(_) => {
            skip("its parameters make no key");
            None
        }
    }
}

fn same_algorithm(named: KeyAlgorithm, alg: Algorithm) -> bool {
    matches!(
        (named, alg),
        (KeyAlgorithm::RS256, Algorithm::RS256)
            | (KeyAlgorithm::RS384, Algorithm::RS384)
            | (KeyAlgorithm::RS512, Algorithm::RS512)
            | (KeyAlgorithm::PS256, Algorithm::PS256)
            | (KeyAlgorithm::ES256, Algorithm::ES256)
            | (KeyAlgorithm::ES384, Algorithm::ES384)
    )
}

/// Where verification gets its keys from.
pub enum Keys {
    Static(Arc<KeySet>),
    Remote(Box<RemoteKeys>),
}

#[derive(Debug, thiserror::Error)]
#[error("no signing keys are available")]
pub struct KeysUnavailable;

impl Keys {
    /// The key set to verify a token naming `kid` with.
    pub async fn current(&self, kid: Option<&str>) -> Result<Arc<KeySet>, KeysUnavailable> {
        match self {
            Keys::Static(keys) => Ok(keys.clone()),
            Keys::Remote(remote) => remote.current(kid).await,
        }
    }

    /// Fetches remote keys now, so the first request does not pay for it.
    /// A fetch that fails is logged and retried by requests; a provider
    /// configuration that can never work is an error.
    pub async fn warm_up(&self) -> Result<(), JwksError> {
        match self {
            Keys::Static(_) => Ok(()),
            Keys::Remote(remote) => remote.warm_up().await,
        }
    }
}

/// Where remote keys live.
#[derive(Debug, Clone)]
pub enum KeyLocation {
    /// The key set's own URL.
    Jwks(KeyUrl),
    /// The provider's OpenID configuration, whose `issuer` must be `issuer`.
    Discovery { endpoint: KeyUrl, issuer: String },
}

pub struct RemoteKeys {
    location: KeyLocation,
    refetch_gap: Duration,
    fetcher: Fetcher,
    /// `jwks_uri`, once discovery has found it (under `refresh`).
    discovered: OnceLock<KeyUrl>,
    state: RwLock<CacheState>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default, Clone)]
struct CacheState {
    keys: Option<Arc<KeySet>>,
    expires: Option<Instant>,
    last_attempt: Option<Instant>,
}

impl CacheState {
    fn fresh(&self, kid: Option<&str>, now: Instant) -> Option<Arc<KeySet>> {
        let keys = self.keys.as_ref()?;
        let fresh = self.expires.is_some_and(|e| now < e);
        let knows_kid = kid.is_none_or(|kid| keys.has_kid(kid));
        (fresh && knows_kid).then(|| keys.clone())
    }

    fn may_fetch(&self, now: Instant, refetch_gap: Duration) -> bool {
        let gap = if self.keys.is_some() { refetch_gap } else { MIN_RETRY_GAP };
        self.last_attempt.is_none_or(|at| now.saturating_duration_since(at) >= gap)
    }

    /// The cached set while it is fresh, or expired for less than [`MAX_STALE`].
    fn servable(&self, now: Instant) -> Option<Arc<KeySet>> {
        let limit = self.expires?.checked_add(MAX_STALE)?;
        (now < limit).then(|| self.keys.clone()).flatten()
    }
}

impl RemoteKeys {
    pub fn new(location: KeyLocation) -> Result<Self, JwksError> {
        Self::with_refetch_gap(location, MIN_REFETCH_GAP)
    }

    /// `refetch_gap`: least time between fetches once keys are cached
    /// (tests shorten it).
    pub fn with_refetch_gap(location: KeyLocation, refetch_gap: Duration) -> Result<Self, JwksError> {
        Ok(RemoteKeys {
            location,
            refetch_gap,
            fetcher: Fetcher::new()?,
            discovered: OnceLock::new(),
            state: RwLock::default(),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    fn snapshot(&self) -> CacheState {
        self.state.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn warm_up(&self) -> Result<(), JwksError> {
        let _guard = self.refresh.lock().await;
        match self.refresh(Instant::now()).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_configuration() => Err(err),
            Err(err) => {
                tracing::warn!(error = %err, "JWKS fetch at init failed; requests will retry");
                Ok(())
            }
        }
    }

    async fn current(&self, kid: Option<&str>) -> Result<Arc<KeySet>, KeysUnavailable> {
        if let Some(keys) = self.snapshot().fresh(kid, Instant::now()) {
            return Ok(keys);
        }
        // One fetch at a time; whoever waited re-reads what it brought.
        let _guard = self.refresh.lock().await;
        let now = Instant::now();
        let state = self.snapshot();
        if let Some(keys) = state.fresh(kid, now) {
            return Ok(keys);
        }
        if state.may_fetch(now, self.refetch_gap) {
            match self.refresh(now).await {
                Ok(keys) => return Ok(keys),
                Err(err) => tracing::warn!(error = %err, "JWKS fetch failed; using the cached keys while they last"),
            }
        }
        let state = self.snapshot();
        match state.servable(now) {
            Some(keys) => Ok(keys),
            None => {
                if state.keys.is_some() {
                    tracing::error!("the cached JWKS expired over 24 h ago and cannot be refreshed");
                }
                Err(KeysUnavailable)
            }
        }
    }

    /// Fetches the key set and caches it; the caller holds `refresh`.
    async fn refresh(&self, now: Instant) -> Result<Arc<KeySet>, JwksError> {
        let fetched = self.fetch().await;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.last_attempt = Some(now);
        let (keys, max_age) = fetched?;
        let keys = Arc::new(keys);
        state.keys = Some(keys.clone());
        state.expires = now.checked_add(max_age);
        Ok(keys)
    }

    async fn fetch(&self) -> Result<(KeySet, Duration), JwksError> {
        let fetched = self.fetcher.get(self.jwks_url().await?).await?;
        let max_age = fetched.max_age.unwrap_or(DEFAULT_MAX_AGE).clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        Ok((KeySet::parse(&fetched.body)?, max_age))
    }

    async fn jwks_url(&self) -> Result<&KeyUrl, JwksError> {
        let (endpoint, issuer) = match &self.location {
            KeyLocation::Jwks(url) => return Ok(url),
            KeyLocation::Discovery { endpoint, issuer } => (endpoint, issuer),
        };
        if let Some(url) = self.discovered.get() {
            return Ok(url);
        }
        let url = discover(&self.fetcher, endpoint, issuer).await?;
        Ok(self.discovered.get_or_init(|| url))
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
async fn discover(fetcher: &Fetcher, endpoint: &KeyUrl, issuer: &str) -> Result<KeyUrl, JwksError> {
    keys_url_of(&fetcher.get(endpoint).await?.body, endpoint, issuer)
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
    fn keys_take_algorithms_from_themselves() {
        let es = r#"{"kty":"EC","kid":"e","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let pinned = RSA.replace(r#""kid":"r""#, r#""kid":"p","alg":"RS384""#);
        let hmac = r#"{"kty":"oct","kid":"h","k":"c2VjcmV0"}"#;
        let enc = RSA.replace(r#""kid":"r""#, r#""kid":"x","use":"enc""#);
        let json = format!(r#"{{"keys":[{RSA},{es},{pinned},{hmac},{enc}]}}"#);
        let set = KeySet::parse(json.as_bytes()).unwrap();
        let count = |kid, alg| set.candidates(Some(kid), alg).count();
        assert_eq!(count("r", Algorithm::RS256), 1);
        assert_eq!(count("r", Algorithm::PS256), 1);
        assert_eq!(count("r", Algorithm::ES256), 0);
        assert_eq!(count("e", Algorithm::ES256), 1);
        assert_eq!(count("e", Algorithm::ES384), 0);
        assert_eq!(count("p", Algorithm::RS384), 1);
        assert_eq!(count("p", Algorithm::RS256), 0);
        assert!(!set.has_kid("h"), "HMAC keys are never used");
        assert!(!set.has_kid("x"), "encryption keys are never used");
        assert_eq!(set.candidates(None, Algorithm::RS256).count(), 1);
        assert_eq!(set.candidates(None, Algorithm::HS256).count(), 0);
    }

    #[test]
    fn one_odd_key_does_not_cost_the_set() {
        let odd = [
            r#"{"kty":"OKP","kid":"ed448","crv":"Ed448","x":"AAAA"}"#,
            r#"{"kty":"EC","kid":"p521","crv":"P-521","x":"AAAA","y":"AAAA"}"#,
            r#"{"kty":"EC","kid":"k1","crv":"secp256k1","x":"AAAA","y":"AAAA"}"#,
            r#"{"kty":"RSA","kid":"oaep","alg":"RSA-OAEP-512","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"RSA","kid":"typed","n":12345,"e":"AQAB"}"#,
            r#"{"kty":"RSA","kid":"x5c","x5c":"not a list","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"XYZ","kid":"unknown"}"#,
            r#""a string""#,
            "null",
        ];
        let json = format!(r#"{{"keys":[{},{RSA}]}}"#, odd.join(","));
        let set = KeySet::parse(json.as_bytes()).unwrap();
        assert!(set.has_kid("r"));
        assert_eq!(set.keys.len(), 1);
        let only_odd = format!(r#"{{"keys":[{}]}}"#, odd.join(","));
        assert!(matches!(KeySet::parse(only_odd.as_bytes()), Err(JwksError::NoUsableKey)));
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert!(matches!(KeySet::parse(br#"{"keys":[]}"#), Err(JwksError::NoUsableKey)));
        assert!(matches!(KeySet::parse(b"not json"), Err(JwksError::Json(_))));
        assert!(matches!(KeySet::parse(br#"{"keys":{}}"#), Err(JwksError::Json(_))));
    }

    #[test]
    fn a_token_without_kid_tries_a_few_keys_only() {
        let many: Vec<String> = (0..50).map(|i| RSA.replace(r#""kid":"r""#, &format!(r#""kid":"k{i}""#))).collect();
        let set = KeySet::parse(format!(r#"{{"keys":[{}]}}"#, many.join(",")).as_bytes()).unwrap();
        assert_eq!(set.candidates(None, Algorithm::RS256).count(), MAX_KIDLESS_CANDIDATES);
        assert_eq!(set.candidates(Some("k42"), Algorithm::RS256).count(), 1);
    }

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
        let now = Instant::now();
        let state = |expires| CacheState { keys: Some(keys.clone()), expires, last_attempt: Some(now) };
        assert!(state(Some(now)).servable(now + MAX_STALE - Duration::from_secs(1)).is_some());
        assert!(state(Some(now)).servable(now + MAX_STALE).is_none());
        assert!(state(None).servable(now).is_none(), "an expiry past Instant's range never served");
    }
}
