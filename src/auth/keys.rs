//! An identity provider's key set (spec §2, §6): each key carries the
//! algorithms it may verify, taken from the key itself (its `alg`, else its
//! type and curve), never from a token's header, so HMAC and `none` can
//! never be chosen by an attacker. A key the function cannot use is
//! skipped; the rest of the set still serves.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

/// Algorithms the function accepts at all (spec §2).
pub const SUPPORTED: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::ES256, Algorithm::ES384, Algorithm::PS256];
/// Keys one token is tried against, with or without `kid`: real key sets
/// hold one to three signing keys per algorithm.
pub const MAX_CANDIDATES: usize = 3;

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
    #[error("not a JSON object with a `keys` array: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no usable signing key (RSA, or EC on P-256/P-384)")]
    NoUsableKey,
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

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Keys that may verify a token with this `kid` (any, without one)
    /// and this algorithm: the first [`MAX_CANDIDATES`] only, so a large
    /// key set, or one repeating a `kid`, cannot make one request cost many
    /// signature checks.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>, alg: Algorithm) -> impl Iterator<Item = &'a DecodingKey> {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(move |k| k.algorithms.contains(&alg))
            .take(MAX_CANDIDATES)
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
    fn a_token_tries_a_few_keys_only_with_or_without_kid() {
        let many: Vec<String> = (0..50).map(|i| RSA.replace(r#""kid":"r""#, &format!(r#""kid":"k{i}""#))).collect();
        let set = KeySet::parse(format!(r#"{{"keys":[{}]}}"#, many.join(",")).as_bytes()).unwrap();
        assert_eq!(set.candidates(None, Algorithm::RS256).count(), MAX_CANDIDATES);
        assert_eq!(set.candidates(Some("k42"), Algorithm::RS256).count(), 1);
        let same_kid = vec![RSA; 50].join(",");
        let set = KeySet::parse(format!(r#"{{"keys":[{same_kid}]}}"#).as_bytes()).unwrap();
        assert_eq!(set.candidates(Some("r"), Algorithm::RS256).count(), MAX_CANDIDATES);
    }
}
