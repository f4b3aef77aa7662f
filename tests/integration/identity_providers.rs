//! The key sets, OpenID configurations and tokens of real identity
//! providers, in the shapes they publish them, served over HTTP from
//! 127.0.0.1: each must verify its own tokens, whatever else its key set
//! holds. Then what a provider (or whoever sits in its place) may send
//! that must not hurt: hostile cache headers, redirects elsewhere, a
//! configuration that names another issuer.

use crate::common::idp::{Idp, Reply};
use crate::common::now;
use aws_lc_rs::rsa::KeySize;
use jsonwebtoken::Algorithm;
use std::sync::Arc;

use netbird_delete_token::auth::jwt::{JwtError, JwtVerifier};
use netbird_delete_token::auth::provider_keys::{Gaps, KeyLocation, Keys, ProviderKeys};
use netbird_delete_token::config::{AllowedGroups, AuthConfig, KeySource, KeyUrl};
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::devkeys::DevKey;
use netbird_delete_token::ids::UserId;
use serde_json::{json, Value};

/// Verifies as a request without a deadline would: the clients' own
/// timeouts bound the key fetches.
async fn verify(verifier: &JwtVerifier, token: &str) -> Result<UserId, JwtError> {
    verifier.verify(token, &Deadline::Unknown).await
}

/// A certificate chain member as providers publish it (base64 DER); the
/// function reads keys from `n`/`e`, `x`/`y`, and only parses `x5c`.
const X5C: &str = "MIICrTCCAZUCBgGMPwRyLTANBgkqhkiG9w0BAQsFADAaMRgwFgYDVQQDDA9uZXRiaXJkLWxvY2FsAA==";

/// `key`'s public JWK with `members` set (a `null` removes one).
fn jwk(key: &DevKey, members: Value) -> Value {
    let mut jwk = serde_json::to_value(key.jwk().unwrap()).unwrap();
    for (name, value) in members.as_object().unwrap() {
        match value {
            Value::Null => {
                jwk.as_object_mut().unwrap().remove(name);
            }
            value => jwk[name] = value.clone(),
        }
    }
    jwk
}

/// Keys no provider of this function's signs with, which real key sets
/// hold beside their signing keys.
fn odd_keys() -> Vec<Value> {
    vec![
        json!({"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": "X9dEm1m0Yf0s54fsYWrUah2hNCSFpw4fig6nXYDpZ3jt8SR2m0bHBhvWeD3x5Q9s0foavq_oJWGA"}),
        json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt", "y": "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"}),
        json!({"kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "gi0g9DzM2SvjVV7iD_upIuuJ7FjOgO6zPpJnFq-0x0w", "y": "eITi4Q6gE9qtdDqLm0bu-sQfpI8gp8eMgXhd9XMuQ7M"}),
        json!({"kty": "RSA", "kid": "oaep512", "alg": "RSA-OAEP-512", "use": "enc", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"}),
        json!({"kty": "RSA", "kid": "typo", "n": 1234, "e": "AQAB"}),
    ]
}

/// What one provider publishes and issues, and how NetBird is set up for it.
struct Provider {
    name: &'static str,
    issuer: String,
    audience: &'static str,
    user_id_claim: &'static str,
    key_set: Value,
    cache_control: &'static str,
    claims: Value,
    /// The user id the token names.
    user: &'static str,
}

impl Provider {
    /// Serves the key set at `/keys` and verifies a token signed by `key`.
    async fn verify(&self, key: &DevKey) -> Result<String, JwtError> {
        let idp = Idp::start().await;
        idp.set("/keys", Reply::json(self.key_set.to_string()).with_header("cache-control", self.cache_control));
        let config = AuthConfig {
            audiences: vec![self.audience.into()],
            user_id_claim: self.user_id_claim.into(),
            ..auth_config(&self.issuer, KeySource::Url(KeyUrl::parse(&idp.url("/keys")).unwrap()))
        };
        let verifier = JwtVerifier::new(&config, None).unwrap();
        verifier.keys().warm_up().await;
        let token = key.sign(&self.claims).unwrap();
        let got = verify(&verifier, &token).await.map(|id| id.to_string());
        assert_eq!(idp.hits("/keys"), 1, "{}: one fetch", self.name);
        got
    }
}

#[tokio::test]
async fn keycloak_with_a_4096_bit_key_and_an_encryption_key() {
    let key = DevKey::generate_rsa_of("kc-sig-4096", Algorithm::RS256, KeySize::Rsa4096).unwrap();
    let enc = DevKey::generate_rsa("kc-enc", Algorithm::RS256).unwrap();
    let issuer = "https://keycloak.example/realms/netbird".to_owned();
    let provider = Provider {
        name: "Keycloak",
        issuer: issuer.clone(),
        audience: "netbird-client",
        user_id_claim: "sub",
        key_set: json!({"keys": [
            jwk(&key, json!({"use": "sig", "alg": "RS256", "x5c": [X5C], "x5t": "Jk8nZHMcc9Xr3Rm3Lhv6ShKXQk8", "x5t#S256": "vbcbmYR6fo_E5Z6j3dNwVHhSH8cdzCLXZ2ZSXcL1Ybk"})),
            jwk(&enc, json!({"use": "enc", "alg": "RSA-OAEP", "x5c": [X5C], "x5t": "3T3xUzS1m1P4lVcrNeEIZWV3QnQ", "x5t#S256": "bKxVnMrTQzw2DlnZVDEwqx5ZRvvd02Z4w1ALsYB8mq8"})),
        ]}),
        cache_control: "no-cache",
        claims: json!({
            "exp": now() + 300, "iat": now(), "auth_time": now(), "jti": "8e2f7e0c-9f5e-4b33-9f1a-1d0c1b2f3a4b",
            "iss": issuer, "aud": ["netbird-client", "account"], "sub": "f3d6b1de-5b3a-4a8f-9a6e-2a1b0c9d8e7f",
            "typ": "Bearer", "azp": "netbird-client", "session_state": "s", "scope": "openid profile email",
            "email_verified": true, "preferred_username": "alice"
        }),
        user: "f3d6b1de-5b3a-4a8f-9a6e-2a1b0c9d8e7f",
    };
    assert_eq!(provider.verify(&key).await.as_deref(), Ok(provider.user));
}

#[tokio::test]
async fn entra_id_keys_without_alg_and_the_user_in_oid() {
    let key = DevKey::generate_rsa("nOo3ZDrODXEK1jKWhXslHR_KXEg", Algorithm::RS256).unwrap();
    let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let issuer = format!("https://login.microsoftonline.com/{tenant}/v2.0");
    let provider = Provider {
        name: "Entra ID",
        issuer: issuer.clone(),
        audience: "6731de76-14a6-49ae-97bc-6eba6914391e",
        user_id_claim: "oid",
        key_set: json!({"keys": [
            jwk(&key, json!({"alg": null, "use": "sig", "x5t": "nOo3ZDrODXEK1jKWhXslHR_KXEg", "x5c": [X5C],
                             "cloud_instance_name": "microsoftonline.com", "issuer": issuer})),
        ]}),
        cache_control: "max-age=86400, private",
        claims: json!({
            "aud": "6731de76-14a6-49ae-97bc-6eba6914391e", "iss": issuer, "iat": now(), "nbf": now(), "exp": now() + 300,
            "name": "Alice", "oid": "00000000-0000-0000-66f3-3332eca7ea81", "preferred_username": "alice@contoso.com",
            "rh": "0.AAAA", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": tenant, "uti": "u", "ver": "2.0"
        }),
        user: "00000000-0000-0000-66f3-3332eca7ea81",
    };
    assert_eq!(provider.verify(&key).await.as_deref(), Ok(provider.user));
}

#[tokio::test]
async fn auth0_subjects_with_a_pipe_and_audiences_with_userinfo() {
    let key = DevKey::generate_rsa("NkJCQzIyQzRBMEU4NjhGNUU4MzU4RkY0M0ZDQzkwOUQ0Q0VGNUMwQg", Algorithm::RS256).unwrap();
    let issuer = "https://netbird.eu.auth0.com/".to_owned();
    let provider = Provider {
        name: "Auth0",
        issuer: issuer.clone(),
        audience: "https://api.netbird.example",
        user_id_claim: "sub",
        key_set: json!({"keys": [
            jwk(&key, json!({"use": "sig", "alg": "RS256", "x5t": "NkJCQzIyQzRBMEU4NjhGNUU4MzU4RkY0M0ZDQzkwOUQ0Q0VGNUMwQg", "x5c": [X5C]})),
        ]}),
        cache_control: "public, max-age=15, stale-while-revalidate=15, stale-if-error=86400",
        claims: json!({
            "iss": issuer, "sub": "google-oauth2|110539841234567890123",
            "aud": ["https://api.netbird.example", "https://netbird.eu.auth0.com/userinfo"],
            "iat": now(), "exp": now() + 300, "azp": "p4E6a2lDdRBZW6Pq9cH5GtUqrXoSDm2N", "scope": "openid profile email"
        }),
        user: "google-oauth2|110539841234567890123",
    };
    assert_eq!(provider.verify(&key).await.as_deref(), Ok(provider.user));
}

#[tokio::test]
async fn zitadel_numeric_key_ids_and_audiences_of_ids() {
    let key = DevKey::generate_rsa("257732470416039938", Algorithm::RS256).unwrap();
    let issuer = "https://netbird-xyz.zitadel.cloud".to_owned();
    let provider = Provider {
        name: "Zitadel",
        issuer: issuer.clone(),
        audience: "257732470416105474",
        user_id_claim: "sub",
        key_set: json!({"keys": [jwk(&key, json!({"use": "sig", "alg": "RS256"}))]}),
        cache_control: "max-age=300",
        claims: json!({
            "aud": ["257732470416105474@netbird", "257732470416105474", "257732470416039937"],
            "amr": ["pwd"], "azp": "257732470416105474@netbird", "client_id": "257732470416105474@netbird",
            "exp": now() + 300, "iat": now(), "iss": issuer, "jti": "257732516519960578", "nbf": now(),
            "sub": "257732470416170018", "urn:zitadel:iam:org:project:roles": {"admin": {"257732470416039937": "netbird"}}
        }),
        user: "257732470416170018",
    };
    assert_eq!(provider.verify(&key).await.as_deref(), Ok(provider.user));
}

#[tokio::test]
async fn okta_beside_keys_this_function_cannot_use() {
    let key = DevKey::generate_rsa("Zq2Y0eU1j5fP8xBUhZ0OqCgZqXyM4H2oQxw6Hk3Dq1E", Algorithm::RS256).unwrap();
    let issuer = "https://dev-123456.okta.com/oauth2/default".to_owned();
    let mut keys = odd_keys();
    keys.push(jwk(&key, json!({"use": "sig", "alg": "RS256"})));
    let provider = Provider {
        name: "Okta",
        issuer: issuer.clone(),
        audience: "api://default",
        user_id_claim: "uid",
        key_set: json!({ "keys": keys }),
        cache_control: "max-age=5336, must-revalidate",
        claims: json!({
            "ver": 1, "jti": "AT.abc", "iss": issuer, "aud": "api://default", "iat": now(), "exp": now() + 300,
            "cid": "0oa1b2c3d4", "uid": "00u1a2b3c4d5e6f7g8h9", "scp": ["openid", "email"], "sub": "alice@example.com"
        }),
        user: "00u1a2b3c4d5e6f7g8h9",
    };
    assert_eq!(provider.verify(&key).await.as_deref(), Ok(provider.user));
}

/// Whatever `Cache-Control` says, init and requests go on: `max-age` is
/// clamped to 30 s..24 h.
#[tokio::test]
async fn hostile_cache_headers_are_clamped_never_a_panic() {
    let key = DevKey::generate_es256("es").unwrap();
    for cache_control in [
        "max-age=9223372036854775807",
        "max-age=18446744073709551615",
        "max-age=99999999999999999999999",
        "max-age=0",
        "max-age=-5",
        "max-age=",
        "max-age=1e9",
        "public, max-age=\"nope\", max-age=7",
        "max-age=\u{e9}\u{e9}",
    ] {
        let provider = Provider {
            name: "hostile cache",
            issuer: "https://idp.test/".into(),
            audience: "netbird",
            user_id_claim: "sub",
            key_set: json!({"keys": [jwk(&key, json!({}))]}),
            cache_control,
            claims: json!({"iss": "https://idp.test/", "aud": "netbird", "sub": "u", "exp": now() + 300}),
            user: "u",
        };
        assert_eq!(provider.verify(&key).await.as_deref(), Ok("u"), "{cache_control:?}");
    }
}

fn claims(issuer: &str) -> Value {
    json!({"iss": issuer, "aud": "netbird", "sub": "u-1", "iat": now(), "exp": now() + 300})
}

/// NetBird's settings for `issuer`: audience `netbird`, the user in `sub`.
fn auth_config(issuer: &str, keys: KeySource) -> AuthConfig {
    AuthConfig { issuer: issuer.into(), audiences: vec!["netbird".into()], ..crate::common::auth_config(keys) }
}

fn discovery_config(endpoint: &str, issuer: &str) -> AuthConfig {
    auth_config(issuer, KeySource::Discovery(KeyUrl::parse(endpoint).unwrap()))
}

const WELL_KNOWN: &str = "/realms/netbird/.well-known/openid-configuration";

/// An OpenID configuration as Keycloak publishes it.
fn openid_configuration(idp: &Idp, issuer: &str, jwks_uri: &str) -> String {
    json!({
        "issuer": issuer,
        "authorization_endpoint": idp.url("/realms/netbird/protocol/openid-connect/auth"),
        "token_endpoint": idp.url("/realms/netbird/protocol/openid-connect/token"),
        "jwks_uri": jwks_uri,
        "response_types_supported": ["code", "none", "id_token", "token", "id_token token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["PS384", "ES384", "RS384", "HS256", "HS512", "ES256", "RS256"],
        "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "password"],
        "code_challenge_methods_supported": ["plain", "S256"]
    })
    .to_string()
}

#[tokio::test]
async fn discovery_finds_the_key_set() {
    let key = DevKey::generate_es256("k").unwrap();
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/netbird");
    let jwks_uri = idp.url("/realms/netbird/protocol/openid-connect/certs");
    idp.set(WELL_KNOWN, Reply::json(openid_configuration(&idp, &issuer, &jwks_uri)));
    idp.set("/realms/netbird/protocol/openid-connect/certs", Reply::json(key.jwks_json().unwrap()));
    let verifier = JwtVerifier::new(&discovery_config(&idp.url(WELL_KNOWN), &issuer), None).unwrap();
    verifier.keys().warm_up().await;
    assert_eq!(verify(&verifier, &key.sign(&claims(&issuer)).unwrap()).await.map(|u| u.to_string()), Ok("u-1".into()));
    assert_eq!((idp.hits(WELL_KNOWN), idp.hits("/realms/netbird/protocol/openid-connect/certs")), (1, 1));
}

#[tokio::test]
async fn discovery_of_another_issuer_gives_no_keys() {
    let idp = Idp::start().await;
    let jwks_uri = idp.url("/certs");
    idp.set(WELL_KNOWN, Reply::json(openid_configuration(&idp, "https://evil.example/", &jwks_uri)));
    let verifier = JwtVerifier::new(&discovery_config(&idp.url(WELL_KNOWN), "https://idp.test/"), None).unwrap();
    verifier.keys().warm_up().await;
    let token = DevKey::generate_es256("k").unwrap().sign(&claims("https://idp.test/")).unwrap();
    assert!(matches!(verify(&verifier, &token).await, Err(JwtError::KeysUnavailable(_))));
    assert_eq!(idp.hits("/certs"), 0, "no key set is fetched from it");
}

#[tokio::test]
async fn discovery_of_a_plain_http_key_set_gives_no_keys() {
    let idp = Idp::start().await;
    let issuer = "https://idp.test/";
    idp.set(WELL_KNOWN, Reply::json(openid_configuration(&idp, issuer, "http://idp.test/certs")));
    let verifier = JwtVerifier::new(&discovery_config(&idp.url(WELL_KNOWN), issuer), None).unwrap();
    verifier.keys().warm_up().await;
    let token = DevKey::generate_es256("k").unwrap().sign(&claims(issuer)).unwrap();
    assert!(matches!(verify(&verifier, &token).await, Err(JwtError::KeysUnavailable(_))));
}

#[tokio::test]
async fn discovery_without_an_issuer_gives_no_keys() {
    let idp = Idp::start().await;
    let mut configuration: Value = serde_json::from_str(&openid_configuration(&idp, "x", &idp.url("/certs"))).unwrap();
    configuration.as_object_mut().unwrap().remove("issuer");
    idp.set(WELL_KNOWN, Reply::json(configuration.to_string()));
    let verifier = JwtVerifier::new(&discovery_config(&idp.url(WELL_KNOWN), "https://idp.test/"), None).unwrap();
    verifier.keys().warm_up().await;
    let token = DevKey::generate_es256("k").unwrap().sign(&claims("https://idp.test/")).unwrap();
    assert!(matches!(verify(&verifier, &token).await, Err(JwtError::KeysUnavailable(_))));
    assert_eq!(idp.hits("/certs"), 0, "no key set is fetched");
}

#[tokio::test]
async fn an_unreadable_configuration_is_retried_not_fatal() {
    let key = DevKey::generate_es256("k").unwrap();
    let idp = Idp::start().await;
    let issuer = "https://idp.test/";
    idp.set(WELL_KNOWN, Reply::json("<html>maintenance</html>"));
    // No retry gap: the gap is judged in unit tests, on times given.
    let location =
        KeyLocation::Discovery { endpoint: KeyUrl::parse(&idp.url(WELL_KNOWN)).unwrap(), issuer: issuer.into() };
    let gaps = Gaps { retry: std::time::Duration::ZERO, ..Gaps::default() };
    let keys = Keys::Provider(Arc::new(ProviderKeys::new(location, None, gaps).unwrap()));
    let verifier = JwtVerifier::with_keys(&discovery_config(&idp.url(WELL_KNOWN), issuer), keys);
    verifier.keys().warm_up().await;
    let token = key.sign(&claims(issuer)).unwrap();
    assert!(matches!(verify(&verifier, &token).await, Err(JwtError::KeysUnavailable(_))));
    idp.set(WELL_KNOWN, Reply::json(openid_configuration(&idp, issuer, &idp.url("/certs"))));
    idp.set("/certs", Reply::json(key.jwks_json().unwrap()));
    assert_eq!(verify(&verifier, &token).await.map(|u| u.to_string()), Ok("u-1".into()));
}

#[tokio::test]
async fn redirects_stay_on_their_origin() {
    let key = DevKey::generate_es256("k").unwrap();
    let issuer = "https://idp.test/";
    let idp = Idp::start().await;
    idp.set("/moved", Reply::redirect("/keys"));
    idp.set("/keys", Reply::json(key.jwks_json().unwrap()));
    // Same scheme and host, another name for this machine: refused.
    idp.set("/elsewhere", Reply::redirect(&format!("http://localhost:{}/keys", idp.port)));
    // Same scheme and host, another port (another service): refused.
    let other = Idp::start().await;
    other.set("/keys", Reply::json(key.jwks_json().unwrap()));
    idp.set("/other-port", Reply::redirect(&other.url("/keys")));
    let verify_from = |path: &str| {
        let config = auth_config(issuer, KeySource::Url(KeyUrl::parse(&idp.url(path)).unwrap()));
        let token = key.sign(&claims(issuer)).unwrap();
        async move {
            let verifier = JwtVerifier::new(&config, None).unwrap();
            verifier.keys().warm_up().await;
            verify(&verifier, &token).await.map(|u| u.to_string())
        }
    };
    assert_eq!(verify_from("/moved").await, Ok("u-1".into()));
    assert_eq!(idp.hits("/keys"), 1);
    assert!(matches!(verify_from("/elsewhere").await, Err(JwtError::KeysUnavailable(_))));
    assert_eq!(idp.hits("/keys"), 1, "the other host was never asked");
    assert!(matches!(verify_from("/other-port").await, Err(JwtError::KeysUnavailable(_))));
    assert_eq!(other.hits("/keys"), 0, "the other port was never asked");
}

/// NetBird's JWT allowed groups with the group claims real providers send:
/// a token is accepted only if its claim names an allowed group.
#[tokio::test]
async fn allowed_groups_with_real_providers_claims() {
    let key = DevKey::generate_es256("k").unwrap();
    let issuer = "https://idp.test/";
    let entra_group = "f2b5e1c0-7d3a-4c1e-9a6b-0d8c2e4f6a81";
    let cases: [(&str, &str, Value, &str, bool); 9] = [
        // Keycloak's group mapper, full paths.
        ("Keycloak", "groups", json!(["/netbird-admins", "/staff"]), "/netbird-admins", true),
        ("Keycloak, not a member", "groups", json!(["/staff"]), "/netbird-admins", false),
        // Entra ID: group object ids, not names.
        ("Entra ID", "groups", json!(["0b0c6f3e-1d2a-4f5b-8c7d-9e0f1a2b3c4d", entra_group]), entra_group, true),
        ("Entra ID by name", "groups", json!([entra_group]), "netbird-admins", false),
        // Okta's groups claim.
        ("Okta", "groups", json!(["Everyone", "netbird-admins"]), "netbird-admins", true),
        ("a single string", "groups", json!("netbird-admins"), "netbird-admins", true),
        (
            "non-string members",
            "groups",
            json!([7, null, {"name": "netbird-admins"}, "netbird-admins"]),
            "netbird-admins",
            true,
        ),
        ("only non-string members", "groups", json!([7, {"name": "netbird-admins"}]), "netbird-admins", false),
        // Zitadel's roles claim is an object: no group.
        (
            "Zitadel roles",
            "urn:zitadel:iam:org:project:roles",
            json!({"netbird-admins": {"1": "org"}}),
            "netbird-admins",
            false,
        ),
    ];
    for (name, claim, groups, allowed, accepted) in cases {
        let config = AuthConfig {
            allowed_groups: Some(AllowedGroups { claim: claim.into(), groups: vec![allowed.into(), "other".into()] }),
            ..auth_config(issuer, KeySource::Inline(key.jwks_json().unwrap()))
        };
        let verifier = JwtVerifier::new(&config, None).unwrap();
        let mut token_claims = claims(issuer);
        token_claims[claim] = groups;
        let got = verify(&verifier, &key.sign(&token_claims).unwrap()).await;
        let want = if accepted { Ok("u-1".to_owned()) } else { Err(JwtError::Invalid) };
        assert_eq!(got.map(|u| u.to_string()), want, "{name}");
    }
    // No claim at all: no group.
    let config = AuthConfig {
        allowed_groups: Some(AllowedGroups { claim: "groups".into(), groups: vec!["netbird-admins".into()] }),
        ..auth_config(issuer, KeySource::Inline(key.jwks_json().unwrap()))
    };
    let verifier = JwtVerifier::new(&config, None).unwrap();
    assert_eq!(verify(&verifier, &key.sign(&claims(issuer)).unwrap()).await, Err(JwtError::Invalid));
}
