//! Where the provider's key set is, and fetching it (spec §6): its own
//! URL, or the `jwks_uri` of the provider's OpenID configuration, whose
//! `issuer` must be the one JWTs carry.

use std::time::Duration;

use serde::Deserialize;

use crate::auth::keys::{JwksError, KeySet};
use crate::auth::provider::cache::CachedKeySet;
use crate::auth::provider::fetch::{FetchError, Fetcher};
use crate::clock::unix_millis;
use crate::config::KeyUrl;
use crate::deadline::Deadline;

/// `max-age` when the provider sends none, and the bounds it is clamped to.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
pub const MIN_MAX_AGE: Duration = Duration::from_secs(30);
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A set's lifetime, from the `max-age` it came with: clamped, so neither
/// a provider nor a shared entry can make it last longer or shorter.
pub fn lifetime(max_age: Option<Duration>) -> Duration {
    max_age.unwrap_or(DEFAULT_MAX_AGE).clamp(MIN_MAX_AGE, MAX_MAX_AGE)
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

/// Why the provider gave no usable key set.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("fetching {0} failed: {1}")]
    Fetch(&'static str, FetchError),
    #[error("the key set is unusable: {0}")]
    KeySet(#[from] JwksError),
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

impl ProviderError {
    /// Errors that no retry can mend: the settings, or the provider's
    /// configuration, disagree with this function's rules.
    pub fn is_configuration(&self) -> bool {
        matches!(self, ProviderError::IssuerMismatch { .. } | ProviderError::BadJwksUri(_))
    }

    /// The time given ran out (or was too short to start): the provider
    /// may be healthy and slower than that.
    pub fn is_out_of_time(&self) -> bool {
        matches!(self, ProviderError::Fetch(_, FetchError::TimedOut(_) | FetchError::NotSent(_)))
    }
}

/// The key set at `location` (its OpenID configuration read first, when
/// configured), checked usable, and as the shared cache stores it.
pub async fn fetch_key_set(
    fetcher: &Fetcher,
    location: &KeyLocation,
    deadline: &Deadline,
) -> Result<(KeySet, CachedKeySet), ProviderError> {
    let discovered;
    let url = match location {
        KeyLocation::Jwks(url) => url,
        KeyLocation::Discovery { endpoint, issuer } => {
            let fetched = fetcher
                .get(endpoint, deadline)
                .await
                .map_err(|e| ProviderError::Fetch("the OpenID configuration", e))?;
            discovered = keys_url_of(&fetched.body, endpoint, issuer)?;
            &discovered
        }
    };
    let fetched = fetcher.get(url, deadline).await.map_err(|e| ProviderError::Fetch("the key set", e))?;
    let keys = KeySet::parse(&fetched.body)?;
    // JSON that parsed is UTF-8: the conversion loses nothing.
    let document = String::from_utf8_lossy(&fetched.body).into_owned();
    let max_age_secs = lifetime(fetched.max_age).as_secs();
    Ok((keys, CachedKeySet { document, fetched_at_ms: unix_millis(), max_age_secs }))
}

#[derive(Deserialize)]
struct OpenIdConfiguration {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// The key set's URL in the OpenID configuration `document`, served at
/// `endpoint`, checked against `issuer` (a configuration without one is
/// refused like one that names another).
fn keys_url_of(document: &[u8], endpoint: &KeyUrl, issuer: &str) -> Result<KeyUrl, ProviderError> {
    let config: OpenIdConfiguration =
        serde_json::from_slice(document).map_err(|e| ProviderError::Discovery(e.to_string()))?;
    let found = config.issuer.unwrap_or_default();
    if found != issuer {
        return Err(ProviderError::IssuerMismatch { expected: issuer.to_owned(), found });
    }
    let jwks_uri = config.jwks_uri.ok_or_else(|| ProviderError::Discovery("it has no jwks_uri".into()))?;
    // A document from a real provider may not point the function at a
    // service on its own machine (the Lambda Runtime API listens there).
    KeyUrl::parse(&jwks_uri)
        .filter(|url| !url.is_loopback() || endpoint.is_loopback())
        .ok_or(ProviderError::BadJwksUri(jwks_uri))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(matches!(url(&doc(issuer, hostile), &remote), Err(ProviderError::BadJwksUri(_))), "{hostile}");
        }
        assert!(url(&doc(issuer, "http://127.0.0.1:8080/keys"), &local).is_ok(), "local development");
        let missing = url(&doc(None, "https://idp.example/keys"), &remote);
        assert!(matches!(missing, Err(ProviderError::IssuerMismatch { .. })), "no issuer is no match");
        assert!(missing.unwrap_err().is_configuration());
        assert!(matches!(url(b"[]", &remote), Err(ProviderError::Discovery(_))));
    }

    #[test]
    fn lifetimes_are_clamped_to_half_a_minute_and_a_day() {
        assert_eq!(lifetime(None), DEFAULT_MAX_AGE);
        assert_eq!(lifetime(Some(Duration::ZERO)), MIN_MAX_AGE);
        assert_eq!(lifetime(Some(Duration::from_secs(u64::MAX))), MAX_MAX_AGE);
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
