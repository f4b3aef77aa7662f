//! The identity provider's signing keys (contract §6): inline, or fetched
//! from `AUTH_KEYS_LOCATION` and cached per `Cache-Control: max-age`.
//!
//! Each key carries the algorithms it may verify, taken from the key itself
//! (its `alg`, else its type and curve), never from a token's header: HMAC
//! and `none` can never be chosen by an attacker.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Algorithms the function accepts at all (contract §2).
pub const SUPPORTED: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::ES256, Algorithm::ES384, Algorithm::PS256];

const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// Floor for `max-age` and gap between refetches on an unknown `kid`.
const MIN_REFETCH_GAP: Duration = Duration::from_secs(30);
/// Gap between attempts while no key set has ever been fetched.
const MIN_RETRY_GAP: Duration = Duration::from_secs(1);
const MAX_JWKS_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

pub struct VerifyingKey {
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
    #[error("the JWKS is not valid JSON of the JWK Set form: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the JWKS holds no usable signing key (RSA, or EC on P-256/P-384)")]
    NoUsableKey,
    #[error("fetching the JWKS failed: {0}")]
    Fetch(String),
}

impl KeySet {
    pub fn parse(json: &[u8]) -> Result<Self, JwksError> {
        let set: JwkSet = serde_json::from_slice(json)?;
        let keys: Vec<VerifyingKey> = set.keys.iter().filter_map(verifying_key).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(KeySet { keys })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Keys that may verify a token with this `kid` (all keys when the token
    /// names none) and this algorithm.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>, alg: Algorithm) -> impl Iterator<Item = &'a DecodingKey> {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(move |k| k.algorithms.contains(&alg))
            .map(|k| &k.key)
    }
}

fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
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
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey { kid: jwk.common.key_id.clone(), key, algorithms })
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
    Remote(RemoteKeys),
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
    /// A failure is logged; requests retry.
    pub async fn warm_up(&self) {
        if let Keys::Remote(remote) = self {
            let _ = remote.current(None).await;
        }
    }
}

pub struct RemoteKeys {
    url: String,
    refetch_gap: Duration,
    http: reqwest::Client,
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
    fn usable(&self, kid: Option<&str>, now: Instant) -> Option<Arc<KeySet>> {
        let keys = self.keys.as_ref()?;
        let fresh = self.expires.is_some_and(|e| now < e);
        let knows_kid = kid.is_none_or(|kid| keys.has_kid(kid));
        (fresh && knows_kid).then(|| keys.clone())
    }

    fn may_fetch(&self, now: Instant, refetch_gap: Duration) -> bool {
        let gap = if self.keys.is_some() { refetch_gap } else { MIN_RETRY_GAP };
        self.last_attempt.is_none_or(|at| now.duration_since(at) >= gap)
    }
}

impl RemoteKeys {
    pub fn new(url: String) -> Result<Self, JwksError> {
        Self::with_refetch_gap(url, MIN_REFETCH_GAP)
    }

    /// `refetch_gap`: least time between fetches once keys are cached
    /// (tests shorten it).
    pub fn with_refetch_gap(url: String, refetch_gap: Duration) -> Result<Self, JwksError> {
        let http =
            reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(|e| JwksError::Fetch(e.to_string()))?;
        Ok(RemoteKeys { url, refetch_gap, http, state: RwLock::default(), refresh: tokio::sync::Mutex::new(()) })
    }

    fn snapshot(&self) -> CacheState {
        self.state.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn current(&self, kid: Option<&str>) -> Result<Arc<KeySet>, KeysUnavailable> {
        if let Some(keys) = self.snapshot().usable(kid, Instant::now()) {
            return Ok(keys);
        }
        // One fetch at a time; whoever waited re-reads what it brought.
        let _guard = self.refresh.lock().await;
        let state = self.snapshot();
        let now = Instant::now();
        if let Some(keys) = state.usable(kid, now) {
            return Ok(keys);
        }
        if !state.may_fetch(now, self.refetch_gap) {
            return state.keys.ok_or(KeysUnavailable);
        }
        let fetched = self.fetch().await;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.last_attempt = Some(now);
        match fetched {
            Ok((keys, max_age)) => {
                state.keys = Some(Arc::new(keys));
                state.expires = Some(now + max_age);
            }
            Err(err) => {
                tracing::warn!(error = %err, url = %self.url, "JWKS fetch failed; using the cached keys if any")
            }
        }
        state.keys.clone().ok_or(KeysUnavailable)
    }

    async fn fetch(&self) -> Result<(KeySet, Duration), JwksError> {
        let fail = |e: reqwest::Error| JwksError::Fetch(e.without_url().to_string());
        let mut response = self.http.get(&self.url).send().await.map_err(fail)?.error_for_status().map_err(fail)?;
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_MAX_AGE)
            .max(MIN_REFETCH_GAP);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::Fetch("the JWKS is larger than 1 MiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((KeySet::parse(&body)?, max_age))
    }
}

/// `max-age` of a `Cache-Control` header.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("max-age").then_some(())?;
        value.trim().trim_matches('"').parse().ok().map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(max_age("public, max-age=600, must-revalidate"), Some(Duration::from_secs(600)));
        assert_eq!(max_age("Max-Age=\"5\""), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }

    #[test]
    fn keys_take_algorithms_from_themselves() {
        let rsa = r#"{"kty":"RSA","kid":"r","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}"#;
        let es = r#"{"kty":"EC","kid":"e","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let pinned = rsa.replace(r#""kid":"r""#, r#""kid":"p","alg":"RS384""#);
        let hmac = r#"{"kty":"oct","kid":"h","k":"c2VjcmV0"}"#;
        let enc = rsa.replace(r#""kid":"r""#, r#""kid":"x","use":"enc""#);
        let json = format!(r#"{{"keys":[{rsa},{es},{pinned},{hmac},{enc}]}}"#);
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
    fn a_set_without_usable_keys_is_an_error() {
        assert!(matches!(KeySet::parse(br#"{"keys":[]}"#), Err(JwksError::NoUsableKey)));
        assert!(matches!(KeySet::parse(b"not json"), Err(JwksError::Json(_))));
    }
}
