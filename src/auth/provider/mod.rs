//! Where verification gets its keys (spec §6): inline (`AUTH_JWKS`), or
//! from the identity provider, by its key set's URL or its OpenID
//! configuration ([`discovery`], over [`fetch`]), held by each instance
//! and refreshed within the requests that need it ([`refresh`]), and shared
//! by the fleet through one entry per key source ([`cache`]).

pub mod cache;
pub mod discovery;
pub mod fetch;
pub mod refresh;

use std::sync::Arc;

use crate::auth::keys::KeySet;
use crate::config::{AuthConfig, ConfigError, KeySource};
use crate::deadline::Deadline;
use cache::SharedKeyCache;
use discovery::KeyLocation;
use fetch::Fetcher;
use refresh::{KeysUnavailable, ProviderKeys};

/// Where verification gets its keys.
pub enum Keys<C> {
    Inline(Arc<KeySet>),
    Provider(Arc<ProviderKeys<C>>),
}

impl<C: SharedKeyCache> Keys<C> {
    /// The keys `config` names; a provider's keys shared through `shared`
    /// when given. Inline keys never touch it.
    pub fn new(config: &AuthConfig, shared: Option<Arc<C>>) -> Result<Self, ConfigError> {
        let location = match &config.keys {
            KeySource::Inline(json) => {
                let keys = KeySet::parse(json.as_bytes()).map_err(|e| ConfigError::BadJwks(e.to_string()))?;
                return Ok(Keys::Inline(Arc::new(keys)));
            }
            KeySource::Url(url) => KeyLocation::Jwks(url.clone()),
            KeySource::Discovery(endpoint) => {
                KeyLocation::Discovery { endpoint: endpoint.clone(), issuer: config.issuer.clone() }
            }
        };
        let fetcher = Fetcher::new().map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Keys::Provider(Arc::new(ProviderKeys::new(location, shared, fetcher))))
    }

    /// The key set to verify a token naming `kid` with, within `deadline`.
    pub async fn current(&self, kid: Option<&str>, deadline: &Deadline) -> Result<Arc<KeySet>, KeysUnavailable> {
        match self {
            Keys::Inline(keys) => Ok(keys.clone()),
            Keys::Provider(provider) => provider.current(kid, deadline).await,
        }
    }

    /// At init: the shared cache's entry, read now; the provider asked
    /// without waiting only if that entry is missing, unusable or stale.
    pub async fn warm_up(&self) {
        if let Keys::Provider(provider) = self {
            provider.warm_up().await;
        }
    }

    /// Whether [`Keys::warm_up`] reads the shared cache (one DynamoDB call).
    pub fn reads_shared_cache(&self) -> bool {
        matches!(self, Keys::Provider(provider) if provider.shares())
    }
}
