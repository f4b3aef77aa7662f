//! The identity provider's keys over HTTP from 127.0.0.1, in process: the
//! key sets and tokens of real providers, discovery and the rules its
//! documents must keep, redirects, a rotated key reaching a second instance
//! through the fleet's cache, and a silent provider costing a request no
//! more than its deadline. What the records say, and Lambda's freeze, are
//! the binary's tests (`runtime.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::idp::{Idp, Reply};
use crate::common::*;
use aws_lc_rs::rsa::KeySize;
use jsonwebtoken::Algorithm;
use netbird_delete_token::auth::jwt::{JwtError, JwtVerifier};
use netbird_delete_token::auth::provider::cache::{CachedKeySet, SharedKeyCache};
use netbird_delete_token::auth::provider::discovery::KeyLocation;
use netbird_delete_token::auth::reason::Reason;
use netbird_delete_token::config::{AuthConfig, KeySource, KeyUrl};
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::devkeys::{jwks_json, DevKey};
use netbird_delete_token::storage::memory::MemoryStore;
use serde_json::{json, Value};

const WELL_KNOWN: &str = "/.well-known/openid-configuration";

type Verifier = JwtVerifier<MemoryStore>;

/// A provider's name, its key, that key's JWK members, what else its set
/// holds, its `Cache-Control`, issuer, audience, user id claim, a token's
/// claims, and the user the token names.
type Provider = (
    &'static str,
    DevKey,
    Value,
    Vec<Value>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Value,
    &'static str,
);

/// NetBird's settings for `issuer` and `audience`, the user in `claim`.
fn settings(issuer: &str, audience: &str, claim: &str, keys: KeySource) -> AuthConfig {
    AuthConfig {
        issuer: issuer.into(),
        audiences: vec![audience.into()],
        keys,
        user_id_claim: claim.into(),
        allowed_groups: None,
    }
}

fn url(idp: &Idp, path: &str) -> KeyUrl {
    KeyUrl::parse(&idp.url(path)).unwrap()
}

/// The user `token` names, verified as a request with `deadline` would.
async fn verify_within(verifier: &Verifier, token: &str, deadline: Deadline) -> Result<String, JwtError> {
    verifier.verify(token, &deadline).await.map(|verified| verified.user_id.to_string())
}

async fn verify(verifier: &Verifier, token: &str) -> Result<String, JwtError> {
    verify_within(verifier, token, Deadline::after(Duration::from_secs(5))).await
}

fn refused(reason: Reason) -> impl Fn(&Result<String, JwtError>) -> bool {
    move |got| matches!(got, Err(JwtError::Refused(refused)) if refused.reason == reason)
}

/// `key`'s public JWK with `members` set (a `null` removes one).
fn jwk(key: &DevKey, members: Value) -> Value {
    let mut jwk = serde_json::to_value(key.jwk().unwrap()).unwrap();
    for (name, value) in members.as_object().unwrap() {
        match value {
            Value::Null => jwk.as_object_mut().unwrap().remove(name),
            value => jwk.as_object_mut().unwrap().insert(name.clone(), value.clone()),
        };
    }
    jwk
}

/// Each provider's key set (with what else it publishes beside its signing
/// key), its `Cache-Control`, and a token as it issues them: each verifies,
/// and names its user, with NetBird set up for that provider. Hostile cache
/// headers are clamped, never a failure.
#[tokio::test]
async fn real_providers_key_sets_and_tokens() {
    let x5c = json!(["MIICrTCCAZUCBgGMPwRyLTANBgkqhkiG9w0BAQsFADAaMRgwFgYDVQQDDA9uZXRiaXJkLWxvY2FsAA=="]);
    let odd = json!([
        {"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": "X9dEm1m0Yf0s54fsYWrUah2hNCSFpw4fig6nXYDpZ3jt8SR2m0bHBhvWeD3x5Q9s0foavq_oJWGA"},
        {"kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "gi0g9DzM2SvjVV7iD_upIuuJ7FjOgO6zPpJnFq-0x0w", "y": "eITi4Q6gE9qtdDqLm0bu-sQfpI8gp8eMgXhd9XMuQ7M"},
        {"kty": "RSA", "kid": "typo", "n": 1234, "e": "AQAB"}
    ]);
    let now = now();
    let entra = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
    let keycloak = DevKey::generate_rsa_of("kc-sig", Algorithm::RS256, KeySize::Rsa4096).unwrap();
    let encryption = DevKey::generate_rsa("kc-enc", Algorithm::RS256).unwrap();
    let rsa = |kid: &str| DevKey::generate_rsa(kid, Algorithm::RS256).unwrap();
    let providers: Vec<Provider> = vec![
        (
            "Keycloak, a 4096-bit key beside an encryption key",
            keycloak,
            json!({ "use": "sig", "alg": "RS256", "x5c": x5c, "x5t": "Jk8nZHMcc9Xr3Rm3Lhv6ShKXQk8" }),
            vec![jwk(&encryption, json!({ "use": "enc", "alg": "RSA-OAEP", "x5c": x5c }))],
            "no-cache",
            "https://keycloak.example/realms/netbird",
            "netbird-client",
            "sub",
            json!({ "aud": ["netbird-client", "account"], "azp": "netbird-client", "typ": "Bearer", "sub": "f3d6b1de" }),
            "f3d6b1de",
        ),
        (
            "Entra ID, keys without alg, the user in oid",
            rsa("nOo3ZDrODXEK1jKWhXslHR_KXEg"),
            json!({ "alg": null, "use": "sig", "x5c": x5c, "issuer": entra }),
            vec![],
            "max-age=86400, private",
            entra,
            "6731de76-14a6-49ae-97bc-6eba6914391e",
            "oid",
            json!({ "aud": "6731de76-14a6-49ae-97bc-6eba6914391e", "oid": "00000000-66f3", "sub": "AAAA", "ver": "2.0" }),
            "00000000-66f3",
        ),
        (
            "Auth0, a subject with a pipe, audiences with userinfo",
            rsa("NkJCQzIyQzRBMEU4NjhGNUU4MzU4RkY0M0ZDQzkwOUQ0Q0VGNUMwQg"),
            json!({ "use": "sig", "alg": "RS256", "x5c": x5c }),
            vec![],
            "public, max-age=15, stale-while-revalidate=15, stale-if-error=86400",
            "https://netbird.eu.auth0.com/",
            "https://api.netbird.example",
            "sub",
            json!({ "aud": ["https://api.netbird.example", "https://netbird.eu.auth0.com/userinfo"], "sub": "google-oauth2|1105" }),
            "google-oauth2|1105",
        ),
        (
            "Zitadel, numeric key ids and audiences",
            rsa("257732470416039938"),
            json!({ "use": "sig", "alg": "RS256" }),
            vec![],
            "max-age=300",
            "https://netbird-xyz.zitadel.cloud",
            "257732470416105474",
            "sub",
            json!({ "aud": ["257732470416105474@netbird", "257732470416105474"], "sub": "257732470416170018" }),
            "257732470416170018",
        ),
        (
            "Okta, beside keys this function cannot use",
            rsa("Zq2Y0eU1j5fP8xBUhZ0OqCgZqXyM4H2oQxw6Hk3Dq1E"),
            json!({ "use": "sig", "alg": "RS256" }),
            odd.as_array().unwrap().clone(),
            "max-age=5336, must-revalidate",
            "https://dev-123456.okta.com/oauth2/default",
            "api://default",
            "uid",
            json!({ "aud": "api://default", "uid": "00u1a2b3", "sub": "alice@example.com", "scp": ["openid"] }),
            "00u1a2b3",
        ),
    ];
    let hostile = [
        "max-age=18446744073709551615",
        "max-age=99999999999999999999999",
        "max-age=0",
        "max-age=-5",
        "public, max-age=\"nope\", max-age=7",
        "max-age=\u{e9}\u{e9}",
    ];
    let hostile = hostile.map(|cache_control| {
        (
            "a hostile Cache-Control",
            DevKey::generate_es256("es").unwrap(),
            json!({}),
            vec![],
            cache_control,
            "https://idp.test/",
            "netbird",
            "sub",
            json!({ "aud": "netbird", "sub": "u" }),
            "u",
        )
    });
    for (name, key, members, others, cache_control, issuer, audience, claim, mut claims, user) in
        providers.into_iter().chain(hostile)
    {
        let idp = Idp::start().await;
        let mut keys = others;
        keys.push(jwk(&key, members));
        idp.set("/keys", Reply::json(json!({ "keys": keys }).to_string()).with_header("cache-control", cache_control));
        let verifier =
            Verifier::new(&settings(issuer, audience, claim, KeySource::Url(url(&idp, "/keys"))), None).unwrap();
        for (name, value) in [("iss", json!(issuer)), ("iat", json!(now)), ("exp", json!(now + 300))] {
            claims[name] = value;
        }
        assert_eq!(verify(&verifier, &key.sign(&claims).unwrap()).await.as_deref(), Ok(user), "{name} {cache_control}");
        assert_eq!(idp.hits("/keys"), 1, "{name}: one fetch");
    }
}

/// `AUTH_OIDC_CONFIG_ENDPOINT`: the key set is the configuration's
/// `jwks_uri`; a configuration of another issuer, of none, or pointing at a
/// key set over plain http gives no keys, and none is fetched from it; an
/// unreadable one is tried again by the next token.
#[tokio::test]
async fn discovery_finds_the_key_set_and_refuses_documents_that_break_its_rules() {
    let key = DevKey::generate_es256("k").unwrap();
    let token = key.sign(&claims("u")).unwrap();
    let idp = Idp::start().await;
    idp.set("/certs", Reply::json(key.jwks_json().unwrap()));
    let verifier = |path: &str| {
        Verifier::new(&settings(ISSUER, AUDIENCE, "sub", KeySource::Discovery(url(&idp, path))), None).unwrap()
    };
    let configuration =
        |issuer: Value, jwks_uri: &str| Reply::json(json!({ "issuer": issuer, "jwks_uri": jwks_uri }).to_string());
    idp.set("/good", configuration(json!(ISSUER), &idp.url("/certs")));
    idp.set("/other-issuer", configuration(json!("https://evil.example/"), &idp.url("/certs")));
    idp.set("/no-issuer", configuration(Value::Null, &idp.url("/certs")));
    idp.set("/plain-http", configuration(json!(ISSUER), "http://idp.test/certs"));
    assert_eq!(verify(&verifier("/good"), &token).await.as_deref(), Ok("u"));
    assert_eq!((idp.hits("/good"), idp.hits("/certs")), (1, 1));
    for path in ["/other-issuer", "/no-issuer", "/plain-http"] {
        let got = verify(&verifier(path), &token).await;
        assert!(matches!(got, Err(JwtError::KeysUnavailable(_))), "{path}: {got:?}");
    }
    assert_eq!(idp.hits("/certs"), 1, "no key set fetched from a configuration that breaks the rules");
    idp.set("/maintenance", Reply::json("<html>maintenance</html>"));
    let later = verifier("/maintenance");
    assert!(matches!(verify(&later, &token).await, Err(JwtError::KeysUnavailable(_))));
    tokio::time::sleep(Duration::from_millis(1_100)).await; // the retry gap while no set is held
    idp.set("/maintenance", configuration(json!(ISSUER), &idp.url("/certs")));
    assert_eq!(verify(&later, &token).await.as_deref(), Ok("u"), "the next token tries again");
}

#[tokio::test]
async fn redirects_stay_on_their_origin() {
    let key = DevKey::generate_es256("k").unwrap();
    let token = key.sign(&claims("u")).unwrap();
    let idp = Idp::start().await;
    let other = Idp::start().await;
    for provider in [&idp, &other] {
        provider.set("/keys", Reply::json(key.jwks_json().unwrap()));
    }
    idp.set("/moved", Reply::redirect("/keys"));
    // Another name for this machine, another port (another service): refused.
    idp.set("/elsewhere", Reply::redirect(&format!("http://localhost:{}/keys", idp.port)));
    idp.set("/other-port", Reply::redirect(&other.url("/keys")));
    let from = |path| Verifier::new(&settings(ISSUER, AUDIENCE, "sub", KeySource::Url(url(&idp, path))), None).unwrap();
    assert_eq!(verify(&from("/moved"), &token).await.as_deref(), Ok("u"));
    for path in ["/elsewhere", "/other-port"] {
        assert!(matches!(verify(&from(path), &token).await, Err(JwtError::KeysUnavailable(_))), "{path}");
    }
    assert_eq!((idp.hits("/keys"), other.hits("/keys")), (1, 0), "neither elsewhere was asked");
}

/// Two instances sharing the fleet's cache: a key the provider rotated in
/// reaches the second through the cache, without asking the provider; a
/// kid no set holds is a 401, however often it comes.
#[tokio::test]
async fn a_rotated_key_reaches_another_instance_through_the_cache() {
    let old = DevKey::generate_es256("old").unwrap();
    let idp = Idp::start().await;
    idp.set(WELL_KNOWN, Reply::json(json!({ "issuer": ISSUER, "jwks_uri": idp.url("/certs") }).to_string()));
    idp.set("/certs", Reply::json(old.jwks_json().unwrap()));
    let cache = Arc::new(MemoryStore::default());
    let location = KeyLocation::Discovery { endpoint: url(&idp, WELL_KNOWN), issuer: ISSUER.into() };
    let entry = CachedKeySet { document: old.jwks_json().unwrap(), fetched_at_ms: now_ms(), max_age_secs: 3600 };
    assert_eq!(cache.store(&location.cache_key(), &entry, &Deadline::Unknown).await, Ok(true));
    let config = settings(ISSUER, AUDIENCE, "sub", KeySource::Discovery(url(&idp, WELL_KNOWN)));
    let (a, b) = (Verifier::new(&config, Some(cache.clone())).unwrap(), Verifier::new(&config, Some(cache)).unwrap());
    a.keys().warm_up().await;
    b.keys().warm_up().await;
    assert_eq!(verify(&a, &old.sign(&claims("u")).unwrap()).await.as_deref(), Ok("u"));
    let asked = || idp.hits(WELL_KNOWN) + idp.hits("/certs");
    assert_eq!(asked(), 0, "both started from the fleet's cache");

    let new = DevKey::generate_es256("new").unwrap();
    idp.set("/certs", Reply::json(jwks_json(&[&old, &new]).unwrap()));
    assert_eq!(verify(&a, &new.sign(&claims("u")).unwrap()).await.as_deref(), Ok("u"));
    assert_eq!(asked(), 2, "A asked the provider for the new kid");
    assert_eq!(verify(&b, &new.sign(&claims("u")).unwrap()).await.as_deref(), Ok("u"));
    assert_eq!(asked(), 2, "B found it in the cache");
    let stranger = DevKey::generate_es256("stranger").unwrap().sign(&claims("u")).unwrap();
    for _ in 0..5 {
        assert!(refused(Reason::JwtUnknownKid)(&verify(&b, &stranger).await));
    }
    assert!(asked() <= 4, "a made-up kid cannot make it fetch in a loop: {}", asked());
}

/// A set past its lifetime is refreshed within the request that finds it:
/// a key the provider has dropped since is refused by that request, not
/// accepted once more from the old set.
#[tokio::test]
async fn a_key_the_provider_dropped_is_refused_by_the_request_that_refreshes() {
    let (old, new) = (DevKey::generate_es256("old").unwrap(), DevKey::generate_es256("new").unwrap());
    let idp = Idp::start().await;
    idp.set("/keys", Reply::json(new.jwks_json().unwrap()));
    let cache = Arc::new(MemoryStore::default());
    let source = KeyLocation::Jwks(url(&idp, "/keys")).cache_key();
    let entry = CachedKeySet { document: old.jwks_json().unwrap(), fetched_at_ms: now_ms() - 29_000, max_age_secs: 30 };
    assert_eq!(cache.store(&source, &entry, &Deadline::Unknown).await, Ok(true));
    let config = settings(ISSUER, AUDIENCE, "sub", KeySource::Url(url(&idp, "/keys")));
    let verifier = Verifier::new(&config, Some(cache)).unwrap();
    verifier.keys().warm_up().await;
    assert_eq!(idp.hits("/keys"), 0, "fresh at init");
    tokio::time::sleep(Duration::from_millis(1_100)).await; // past its lifetime
    assert!(refused(Reason::JwtUnknownKid)(&verify(&verifier, &old.sign(&claims("u")).unwrap()).await));
    assert_eq!(idp.hits("/keys"), 1, "the request refreshed");
    assert_eq!(verify(&verifier, &new.sign(&claims("u")).unwrap()).await.as_deref(), Ok("u"));
}

/// A provider that accepts connections and never answers: a JWT whose key
/// the instance lacks waits no longer than its deadline, whether it fetches
/// itself or waits for the fetch init started.
#[tokio::test]
async fn a_silent_provider_costs_a_request_no_more_than_its_deadline() {
    let silent = Idp::silent().await;
    let config = settings(ISSUER, AUDIENCE, "sub", KeySource::Url(KeyUrl::parse(&silent.url("/keys")).unwrap()));
    let token = DevKey::generate_es256("k").unwrap().sign(&claims("u")).unwrap();
    for init_fetches in [false, true] {
        let verifier = Verifier::new(&config, None).unwrap();
        if init_fetches {
            verifier.keys().warm_up().await;
        }
        let started = Instant::now();
        let got = verify_within(&verifier, &token, Deadline::after(Duration::from_millis(300))).await;
        assert!(started.elapsed() < Duration::from_millis(600), "{:?}", started.elapsed());
        let Err(JwtError::KeysUnavailable(cause)) = got else { panic!("{got:?}") };
        let why = if init_fetches { "already under way" } else { "no whole answer within" };
        assert!(cause.0.contains(why), "{cause}");
    }
}

/// Entries of the fleet's cache a careless writer (or a clock gone wrong)
/// left: no key set, or fetched a day ahead. Each is ignored, the provider
/// asked, and its set replaces the entry.
#[tokio::test]
async fn a_cache_entry_that_cannot_be_believed_is_ignored_and_replaced() {
    let key = DevKey::generate_es256("k").unwrap();
    let idp = Idp::start().await;
    idp.set("/keys", Reply::json(key.jwks_json().unwrap()));
    let source = KeyLocation::Jwks(url(&idp, "/keys")).cache_key();
    for (what, document, fetched_at_ms) in [
        ("no key set", "not a key set".to_owned(), now_ms()),
        ("a day ahead", key.jwks_json().unwrap(), now_ms() + 86_400_000),
    ] {
        let cache = Arc::new(MemoryStore::default());
        let entry = CachedKeySet { document, fetched_at_ms, max_age_secs: 3600 };
        assert_eq!(cache.store(&source, &entry, &Deadline::Unknown).await, Ok(true));
        let asked = idp.hits("/keys");
        let verifier =
            Verifier::new(&settings(ISSUER, AUDIENCE, "sub", KeySource::Url(url(&idp, "/keys"))), Some(cache.clone()))
                .unwrap();
        verifier.keys().warm_up().await;
        assert_eq!(verify(&verifier, &key.sign(&claims("u")).unwrap()).await.as_deref(), Ok("u"), "{what}");
        assert_eq!(idp.hits("/keys"), asked + 1, "{what}: the provider was asked");
        let replaced = cache.load(&source, &Deadline::Unknown).await.unwrap().unwrap();
        assert_eq!((replaced.document, replaced.fetched_at_ms <= now_ms()), (key.jwks_json().unwrap(), true), "{what}");
    }
}
