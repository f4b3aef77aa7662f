//! JWT verification (spec §2, §10) in the order of the spec's reasons
//! table: the signature is the library's, the claims this module's own.

use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::auth::keys::SUPPORTED;
use crate::auth::provider::cache::SharedKeyCache;
use crate::auth::provider::refresh::KeysUnavailable;
use crate::auth::provider::Keys;
use crate::auth::reason::{Reason, Refused, Shown};
use crate::clock::unix_seconds;
use crate::config::{AllowedGroups, AuthConfig, ConfigError};
use crate::deadline::Deadline;
use crate::ids::UserId;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: f64 = 60.0;

pub struct JwtVerifier<C> {
    keys: Keys<C>,
    issuer: String,
    audiences: Vec<String>,
    user_id_claim: String,
    allowed_groups: Option<AllowedGroups>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token invalid: {}", .0.reason.as_str())]
    Refused(Refused),
    #[error("no usable signing keys: {0}")]
    KeysUnavailable(#[from] KeysUnavailable),
}

/// A token that passed every check: whose it is, and its public values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user_id: UserId,
    pub shown: Shown,
}

/// A token read but not yet verified.
struct Token<'a> {
    alg: String,
    kid: Option<String>,
    /// `header.payload`, what the signature signs.
    message: &'a str,
    signature: &'a str,
    claims: Map<String, Value>,
}

impl<C: SharedKeyCache> JwtVerifier<C> {
    /// A verifier for `config`; a provider's keys are shared with the
    /// fleet through `shared` when given.
    pub fn new(config: &AuthConfig, shared: Option<Arc<C>>) -> Result<Self, ConfigError> {
        Ok(JwtVerifier {
            keys: Keys::new(config, shared)?,
            issuer: config.issuer.clone(),
            audiences: config.audiences.clone(),
            user_id_claim: config.user_id_claim.clone(),
            allowed_groups: config.allowed_groups.clone(),
        })
    }

    pub fn keys(&self) -> &Keys<C> {
        &self.keys
    }

    /// The caller, if `token` passes every check; keys are fetched, when
    /// they must be, within `deadline`.
    pub async fn verify(&self, token: &str, deadline: &Deadline) -> Result<Verified, JwtError> {
        let refuse = |reason, shown| Err(JwtError::Refused(Refused::new(reason, shown)));
        let Some(token) = read(token) else { return refuse(Reason::JwtMalformed, Shown::default()) };
        let mut shown = Shown {
            alg: Some(token.alg.clone()),
            kid: token.kid.clone(),
            iss: token.claims.get("iss").map(text),
            aud: token.claims.get("aud").map_or_else(Vec::new, strings),
            ..Shown::default()
        };
        // A time claim that is not a number makes no sense of the token.
        if ["exp", "nbf", "iat"].iter().any(|c| token.claims.get(*c).is_some_and(|v| !v.is_number())) {
            return refuse(Reason::JwtMalformed, shown);
        }
        // The accepted algorithms by name: `none`, HMAC and the rest are
        // named in the log too, though the library has no name for some.
        let Some(alg) = Algorithm::from_str(&token.alg).ok().filter(|a| SUPPORTED.contains(a)) else {
            return refuse(Reason::JwtAlgorithmNotAccepted, shown);
        };
        let kid = token.kid.as_deref();
        let keys = self.keys.current(kid, deadline).await?;
        if kid.is_some_and(|kid| !keys.has_kid(kid)) {
            return refuse(Reason::JwtUnknownKid, shown);
        }
        let mut candidates = keys.candidates(kid, alg).peekable();
        if candidates.peek().is_none() {
            return refuse(Reason::JwtNoKeyForAlgorithm, shown);
        }
        let signed = |key| jsonwebtoken::crypto::verify(token.signature, token.message.as_bytes(), key, alg);
        if !candidates.any(|key| signed(key).unwrap_or(false)) {
            return refuse(Reason::JwtBadSignature, shown);
        }
        let claims = token.claims;
        let now = unix_seconds() as f64;
        let time = |name| claims.get(name).and_then(Value::as_f64);
        let Some(exp) = time("exp") else { return refuse(Reason::JwtNoExpiry, shown) };
        if exp < now - LEEWAY_SECS {
            shown.expired_seconds_ago = Some((now - exp) as u64);
            return refuse(Reason::JwtExpired, shown);
        }
        for claim in ["nbf", "iat"] {
            if time(claim).is_some_and(|at| at > now + LEEWAY_SECS) {
                shown.claim = Some(claim.into());
                return refuse(Reason::JwtNotYetValid, shown);
            }
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return refuse(Reason::JwtWrongIssuer, shown);
        }
        if !shown.aud.iter().any(|aud| self.audiences.contains(aud)) {
            return refuse(Reason::JwtWrongAudience, shown);
        }
        let user_id = match claims.get(&self.user_id_claim) {
            None => Err(Reason::JwtNoUserId),
            Some(id) => id.as_str().and_then(UserId::parse).ok_or(Reason::JwtInvalidUserId),
        };
        let user_id = match user_id {
            Ok(user_id) => user_id,
            Err(reason) => {
                shown.claim = Some(self.user_id_claim.clone());
                return refuse(reason, shown);
            }
        };
        if let Some(allowed) = &self.allowed_groups {
            let Some(claim) = claims.get(&allowed.claim) else {
                shown.claim = Some(allowed.claim.clone());
                return refuse(Reason::JwtNoGroups, shown);
            };
            shown.groups = strings(claim);
            if !shown.groups.iter().any(|group| allowed.groups.contains(group)) {
                return refuse(Reason::JwtNoAllowedGroup, shown);
            }
        }
        Ok(Verified { user_id, shown })
    }
}

/// `token`'s header and claims, read without verification: three
/// base64url parts, the first two JSON objects, the header naming its
/// `alg` (and its `kid`, if any, as a string).
fn read(token: &str) -> Option<Token<'_>> {
    let (message, signature) = token.rsplit_once('.')?;
    let (header, payload) = message.split_once('.')?;
    let object = |part: &str| match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()? {
        Value::Object(object) => Some(object),
        _ => None,
    };
    let header = object(header)?;
    let kid = match header.get("kid") {
        None => None,
        Some(kid) => Some(kid.as_str()?.to_owned()),
    };
    Some(Token { alg: header.get("alg")?.as_str()?.to_owned(), kid, message, signature, claims: object(payload)? })
}

/// A claim as text for the log: a string as it is, anything else as JSON.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// What `aud` or a groups claim (spec §10) names: a string, or an array
/// whose string members count; anything else names none.
fn strings(claim: &Value) -> Vec<String> {
    match claim {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySource;
    use crate::devkeys::{jwks_json, DevKey};
    use crate::storage::memory::MemoryStore;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const ISSUER: &str = "https://idp.test/";

    fn part(value: Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    /// Every JWT reason, one check failing at a time (two for the order),
    /// with the values the log shows beside it.
    #[tokio::test]
    async fn each_refusal_names_the_first_check_that_fails_and_the_values_to_compare() {
        let es = DevKey::generate_es256("es").unwrap();
        let rs = DevKey::generate_rsa("rs", Algorithm::RS256).unwrap();
        let config = AuthConfig {
            issuer: ISSUER.into(),
            audiences: vec!["netbird".into(), "cli".into()],
            keys: KeySource::Inline(jwks_json(&[&es, &rs]).unwrap()),
            user_id_claim: "sub".into(),
            allowed_groups: Some(AllowedGroups { claim: "groups".into(), groups: vec!["ops".into()] }),
        };
        let verifier = JwtVerifier::<MemoryStore>::new(&config, None).unwrap();
        let now = unix_seconds();
        let good =
            json!({ "sub": "u", "iss": ISSUER, "aud": "netbird", "exp": now + 600, "iat": now, "groups": ["ops"] });
        // `good` changed: a null removes its claim.
        let with = |changes: Value| {
            let mut claims = good.as_object().unwrap().clone();
            claims.extend(changes.as_object().unwrap().clone());
            claims.retain(|_, value| !value.is_null());
            Value::Object(claims)
        };
        let sign = |changes: Value| es.sign(&with(changes)).unwrap();
        let valid = rs.sign(&good).unwrap();
        let parts: Vec<&str> = valid.split('.').collect();
        // The valid token's claims under another header, with `signature`.
        let forged = |header: Value, signature: &str| format!("{}.{}.{signature}", part(header), parts[1]);
        let by_new_key = |kid| DevKey::generate_es256(kid).unwrap().sign(&good).unwrap();
        let naming_rs = |alg| Header { kid: Some("rs".into()), ..Header::new(alg) };
        let public_key_as_secret = EncodingKey::from_secret(&rs.public_key_der().unwrap()).unwrap();
        let hmac_by_public_key = encode(&naming_rs(Algorithm::HS256), &good, &public_key_as_secret).unwrap();
        let tampered = format!("{}.{}.{}", parts[0], part(with(json!({ "sub": "admin" }))), parts[2]);
        // A token with `changes`, which the log shows as they are.
        let shown_as_changed = |what, changes: Value, reason| (what, sign(changes.clone()), reason, changes);
        use Reason::*;
        let mut seen = std::collections::BTreeSet::new();
        for (what, token, reason, shown) in [
            ("empty", String::new(), JwtMalformed, json!({})),
            ("not base64 JSON", "a.b.c".into(), JwtMalformed, json!({})),
            ("exp as text", sign(json!({ "exp": "tomorrow" })), JwtMalformed, json!({ "alg": "ES256" })),
            (
                "alg none",
                forged(json!({ "alg": "none", "kid": "rs" }), ""),
                JwtAlgorithmNotAccepted,
                json!({ "alg": "none", "kid": "rs", "iss": ISSUER, "aud": ["netbird"] }),
            ),
            ("HMAC keyed with the public key", hmac_by_public_key, JwtAlgorithmNotAccepted, json!({ "alg": "HS256" })),
            ("EdDSA", forged(json!({ "alg": "EdDSA" }), parts[2]), JwtAlgorithmNotAccepted, json!({ "alg": "EdDSA" })),
            ("a key the set lacks", by_new_key("rotated"), JwtUnknownKid, json!({ "kid": "rotated" })),
            (
                "an EC signature naming the RSA key",
                encode(&naming_rs(Algorithm::ES256), &good, &EncodingKey::from_ec_der(&es.pkcs8)).unwrap(),
                JwtNoKeyForAlgorithm,
                json!({ "alg": "ES256", "kid": "rs" }),
            ),
            (
                "RS256 relabelled PS256 (the key says RS256)",
                forged(json!({ "alg": "PS256", "kid": "rs" }), parts[2]),
                JwtNoKeyForAlgorithm,
                json!({ "alg": "PS256" }),
            ),
            (
                "signed by another key under the same kid",
                by_new_key("es"),
                JwtBadSignature,
                json!({ "alg": "ES256", "kid": "es" }),
            ),
            ("tampered payload", tampered, JwtBadSignature, json!({ "kid": "rs" })),
            ("no exp", sign(json!({ "exp": null })), JwtNoExpiry, json!({})),
            (
                "expired an hour ago",
                sign(json!({ "exp": now - 3600 })),
                JwtExpired,
                json!({ "expired_seconds_ago": 3600 }),
            ),
            (
                "expired, and of another issuer: expiry comes first",
                sign(json!({ "exp": now - 3600, "iss": "https://other/" })),
                JwtExpired,
                json!({ "iss": "https://other/" }),
            ),
            ("nbf ahead", sign(json!({ "nbf": now + 600 })), JwtNotYetValid, json!({ "claim": "nbf" })),
            ("iat ahead", sign(json!({ "iat": now + 600 })), JwtNotYetValid, json!({ "claim": "iat" })),
            shown_as_changed("issuer without its slash", json!({ "iss": "https://idp.test" }), JwtWrongIssuer),
            ("no issuer", sign(json!({ "iss": null })), JwtWrongIssuer, json!({})),
            shown_as_changed("the dashboard's audience", json!({ "aud": ["dashboard"] }), JwtWrongAudience),
            ("no sub", sign(json!({ "sub": null, "oid": "u" })), JwtNoUserId, json!({ "claim": "sub" })),
            ("sub not an id", sign(json!({ "sub": 7 })), JwtInvalidUserId, json!({ "claim": "sub" })),
            ("no groups claim", sign(json!({ "groups": null })), JwtNoGroups, json!({ "claim": "groups" })),
            shown_as_changed("no allowed group", json!({ "groups": ["staff", "dev"] }), JwtNoAllowedGroup),
        ] {
            let Err(JwtError::Refused(refused)) = verifier.verify(&token, &Deadline::Unknown).await else {
                panic!("{what}: not refused");
            };
            assert_eq!(refused.reason, reason, "{what}");
            let got = refused.shown.to_json();
            for (name, want) in shown.as_object().unwrap() {
                assert_eq!(&got[name], want, "{what}: {name} in {got}");
            }
            seen.insert(reason.as_str());
        }
        let jwt_reasons = Reason::ALL.iter().map(|r| r.as_str()).filter(|r| r.starts_with("jwt_")).collect();
        assert_eq!(seen, jwt_reasons, "every JWT reason is tried");
        let verified = verifier.verify(&valid, &Deadline::Unknown).await.unwrap();
        assert_eq!((verified.user_id.as_str(), verified.shown.groups.clone()), ("u", vec!["ops".to_owned()]));
        let by_es =
            verifier.verify(&sign(json!({ "aud": ["other", "cli"], "groups": "ops" })), &Deadline::Unknown).await;
        assert!(by_es.is_ok(), "any listed audience; a group as a string: {by_es:?}");
    }

    #[test]
    fn groups_come_as_a_string_or_an_array_of_strings() {
        assert_eq!(strings(&json!("netbird-admins")), ["netbird-admins"]);
        assert_eq!(strings(&json!([1, null, {"name": "x"}, "ops", ["nested"]])), ["ops"]);
        for none in [json!([]), json!({ "ops": {} }), json!(7)] {
            assert!(strings(&none).is_empty(), "{none}");
        }
    }

    #[test]
    fn a_token_is_read_only_in_its_form() {
        let header = part(json!({ "alg": "none", "kid": "k" }));
        let payload = part(json!({ "sub": "u" }));
        let token = format!("{header}.{payload}.");
        let read = read(&token).expect("a token without signature is still read");
        assert_eq!((read.alg.as_str(), read.kid.as_deref(), read.signature), ("none", Some("k"), ""));
        for malformed in [
            format!("{header}.{payload}"),
            format!("{header}=.{payload}.s"),
            format!("{}.{payload}.s", part(json!({ "kid": "k" }))),
            format!("{}.{payload}.s", part(json!({ "alg": "RS256", "kid": 7 }))),
            format!("{header}.{}.s", part(json!(["sub"]))),
        ] {
            assert!(super::read(&malformed).is_none(), "{malformed}");
        }
    }
}
