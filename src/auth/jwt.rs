//! JWT verification (spec §2): signature by a configured key, the
//! algorithm pinned by that key, `exp` required, `nbf`/`iat` honoured,
//! `iss`/`aud` enforced, the allowed groups (spec §10), and the caller's id
//! from the configured claim.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{decode, decode_header, get_current_timestamp, Algorithm, Validation};
use serde_json::Value;

use crate::auth::keys::{JwksError, SUPPORTED};
use crate::auth::provider_keys::{Keys, KeysUnavailable, SharedKeyCache};
use crate::config::{AllowedGroups, AuthConfig};
use crate::deadline::Deadline;
use crate::ids::UserId;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 60;

pub struct JwtVerifier {
    keys: Keys,
    allowed_groups: Option<AllowedGroups>,
    /// One prepared `Validation` per supported algorithm, built at init.
    validations: Vec<(Algorithm, Validation)>,
    user_id_claim: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token invalid")]
    Invalid,
    #[error("no usable signing keys: {0}")]
    KeysUnavailable(#[from] KeysUnavailable),
}

impl JwtVerifier {
    /// A verifier for `config`; a provider's keys are shared with the
    /// fleet through `shared` when given.
    pub fn new(config: &AuthConfig, shared: Option<Arc<dyn SharedKeyCache>>) -> Result<Self, JwksError> {
        Ok(Self::with_keys(config, Keys::new(config, shared)?))
    }

    /// Verifies with `keys` instead of those `config` names.
    pub fn with_keys(config: &AuthConfig, keys: Keys) -> Self {
        let validations = SUPPORTED
            .iter()
            .map(|&alg| {
                let mut validation = Validation::new(alg);
                validation.set_issuer(&[&config.issuer]);
                validation.set_audience(&config.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.validate_nbf = true;
                validation.leeway = LEEWAY_SECS;
                (alg, validation)
            })
            .collect();
        JwtVerifier {
            keys,
            validations,
            user_id_claim: config.user_id_claim.clone(),
            allowed_groups: config.allowed_groups.clone(),
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The caller's user id, if `token` is valid; keys are fetched, when
    /// they must be, within `deadline`.
    pub async fn verify(&self, token: &str, deadline: &Deadline) -> Result<UserId, JwtError> {
        // An algorithm outside the supported list (HS*, `none`, EdDSA) fails here.
        let header = decode_header(token).map_err(|_| JwtError::Invalid)?;
        let validation =
            self.validations.iter().find(|(alg, _)| *alg == header.alg).map(|(_, v)| v).ok_or(JwtError::Invalid)?;
        let keys = self.keys.current(header.kid.as_deref(), deadline).await?;
        let claims = keys
            .candidates(header.kid.as_deref(), header.alg)
            .find_map(|key| decode::<HashMap<String, Value>>(token, key, validation).ok())
            .ok_or(JwtError::Invalid)?
            .claims;
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_f64().ok_or(JwtError::Invalid)?;
            if iat > (get_current_timestamp() + LEEWAY_SECS) as f64 {
                return Err(JwtError::Invalid);
            }
        }
        if let Some(allowed) = &self.allowed_groups {
            if !in_allowed_group(claims.get(&allowed.claim), &allowed.groups) {
                return Err(JwtError::Invalid);
            }
        }
        match claims.get(&self.user_id_claim) {
            Some(Value::String(id)) => UserId::parse(id).ok_or(JwtError::Invalid),
            _ => Err(JwtError::Invalid),
        }
    }
}

/// Whether a token's groups `claim` names one of `allowed` (spec §10): the
/// claim is a string, or an array whose string members count; anything
/// else, or no claim, is no group.
fn in_allowed_group(claim: Option<&Value>, allowed: &[String]) -> bool {
    let allowed = |group: &str| allowed.iter().any(|a| a == group);
    match claim {
        Some(Value::String(group)) => allowed(group),
        Some(Value::Array(groups)) => groups.iter().filter_map(Value::as_str).any(allowed),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_come_as_a_string_or_an_array_of_strings() {
        let allowed = ["netbird-admins".to_owned(), "ops".to_owned()];
        let member = |claim: Value| in_allowed_group(Some(&claim), &allowed);
        assert!(member(json!("netbird-admins")));
        assert!(member(json!(["everyone", "ops"])));
        assert!(member(json!([1, null, {"name": "x"}, "netbird-admins"])), "string members count");
        assert!(!member(json!("NetBird-Admins")), "names match exactly");
        assert!(!member(json!([])));
        assert!(!member(json!([["ops"]])), "a nested array is no group");
        assert!(!member(json!({ "ops": {} })), "an object is no group");
        assert!(!member(json!(7)));
        assert!(!in_allowed_group(None, &allowed), "no claim, no group");
    }
}
