//! JWT verification against forged, expired and confused tokens, and the
//! remote JWKS cache against a local key server.

use std::sync::Arc;
use std::time::Duration;

use crate::common::idp::{Idp, Reply};
use crate::common::{auth_config, now, AUDIENCE};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use netbird_delete_token::auth::jwt::{JwtError, JwtVerifier};
use netbird_delete_token::auth::provider_keys::{Gaps, KeyLocation, Keys, ProviderKeys};
use netbird_delete_token::config::{AuthConfig, KeySource, KeyUrl};
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::devkeys::{jwks_json, DevKey};
use netbird_delete_token::ids::UserId;
use serde_json::{json, Value};

/// Verifies as a request without a deadline would: the clients' own
/// timeouts bound the key fetches.
async fn verify(verifier: &JwtVerifier, token: &str) -> Result<UserId, JwtError> {
    verifier.verify(token, &Deadline::Unknown).await
}

fn claims() -> Value {
    crate::common::claims("user-1")
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn config(keys: KeySource) -> AuthConfig {
    auth_config(keys)
}

struct Fixture {
    es: DevKey,
    rs: DevKey,
    verifier: JwtVerifier,
}

fn fixture() -> Fixture {
    let es = DevKey::generate_es256("es").unwrap();
    let rs = DevKey::generate_rsa("rs", Algorithm::RS256).unwrap();
    let verifier = JwtVerifier::new(&config(KeySource::Inline(jwks_json(&[&es, &rs]).unwrap())), None).unwrap();
    Fixture { es, rs, verifier }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn valid_tokens_name_their_user() {
    let f = fixture();
    assert_eq!(verify(&f.verifier, &f.es.sign(&claims()).unwrap()).await, Ok("user-1".into()));
    assert_eq!(verify(&f.verifier, &f.rs.sign(&claims()).unwrap()).await, Ok("user-1".into()));
    let listed = with(claims(), "aud", json!(["someone-else", AUDIENCE]));
    assert_eq!(verify(&f.verifier, &f.es.sign(&listed).unwrap()).await, Ok("user-1".into()));
    let no_iat = without(claims(), "iat");
    assert_eq!(verify(&f.verifier, &f.es.sign(&no_iat).unwrap()).await, Ok("user-1".into()));
}

#[tokio::test]
async fn claims_are_enforced() {
    let f = fixture();
    let cases = [
        ("expired", with(claims(), "exp", json!(now() - 120))),
        ("no exp", without(claims(), "exp")),
        ("exp not a number", with(claims(), "exp", json!("soon"))),
        ("wrong iss", with(claims(), "iss", json!("https://evil.test/"))),
        ("no iss", without(claims(), "iss")),
        ("wrong aud", with(claims(), "aud", json!("other"))),
        ("no aud", without(claims(), "aud")),
        ("nbf in the future", with(claims(), "nbf", json!(now() + 600))),
        ("iat in the future", with(claims(), "iat", json!(now() + 600))),
        ("no sub", without(claims(), "sub")),
        ("sub not a string", with(claims(), "sub", json!(42))),
        ("sub empty", with(claims(), "sub", json!(""))),
        ("sub with a newline", with(claims(), "sub", json!("a\nb"))),
    ];
    for (name, claims) in cases {
        let token = f.es.sign(&claims).unwrap();
        assert_eq!(verify(&f.verifier, &token).await, Err(JwtError::Invalid), "{name}");
    }
}

#[tokio::test]
async fn the_user_id_claim_is_configurable() {
    let es = DevKey::generate_es256("es").unwrap();
    let mut config = config(KeySource::Inline(es.jwks_json().unwrap()));
    config.user_id_claim = "https://netbird.io/user_id".into();
    let verifier = JwtVerifier::new(&config, None).unwrap();
    let token = es.sign(&with(claims(), "https://netbird.io/user_id", json!("nb-7"))).unwrap();
    assert_eq!(verify(&verifier, &token).await, Ok("nb-7".into()));
    assert_eq!(verify(&verifier, &es.sign(&claims()).unwrap()).await, Err(JwtError::Invalid));
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let f = fixture();
    let good = f.rs.sign(&claims()).unwrap();
    let parts: Vec<&str> = good.split('.').collect();

    let none = format!("{}.{}.", b64(&json!({"alg": "none", "kid": "rs"})), parts[1]);
    let none_upper = format!("{}.{}.", b64(&json!({"alg": "None", "typ": "JWT"})), parts[1]);

    // HS256 with the RSA public key as the secret: the classic confusion.
    let public = f.rs.public_key_der().unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rs".into());
    let hmac_confused = encode(&header, &claims(), &EncodingKey::from_secret(&public).unwrap()).unwrap();
    let n = URL_SAFE_NO_PAD.decode(f.rs.jwk().unwrap().algorithm_rsa_n()).unwrap();
    let hmac_n = encode(&header, &claims(), &EncodingKey::from_secret(&n).unwrap()).unwrap();

    let tampered = format!("{}.{}.{}", parts[0], b64(&with(claims(), "sub", json!("admin"))), parts[2]);
    let unknown_kid = {
        let stranger = DevKey::generate_es256("stranger").unwrap();
        stranger.sign(&claims()).unwrap()
    };
    let kid_swapped = {
        // Signed by the EC key but naming the RSA key.
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("rs".into());
        let key = EncodingKey::from_ec_der(&f.es.pkcs8);
        encode(&header, &claims(), &key).unwrap()
    };
    let alg_swapped = format!("{}.{}.{}", b64(&json!({"alg": "PS256", "kid": "rs"})), parts[1], parts[2]);
    let cases = [
        ("alg none", none),
        ("alg None", none_upper),
        ("HS256 keyed with the public key", hmac_confused),
        ("HS256 keyed with the modulus", hmac_n),
        ("tampered payload", tampered),
        ("unknown kid", unknown_kid),
        ("kid of another key", kid_swapped),
        ("alg swapped to PS256", alg_swapped),
        ("garbage", "a.b.c".into()),
        ("two parts", format!("{}.{}", parts[0], parts[1])),
        ("empty", String::new()),
    ];
    for (name, token) in cases {
        assert_eq!(verify(&f.verifier, &token).await, Err(JwtError::Invalid), "{name}");
    }
}

trait RsaModulus {
    fn algorithm_rsa_n(&self) -> String;
}

impl RsaModulus for jsonwebtoken::jwk::Jwk {
    fn algorithm_rsa_n(&self) -> String {
        match &self.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => rsa.n.clone(),
            _ => panic!("not an RSA key"),
        }
    }
}

#[tokio::test]
async fn remote_keys_are_fetched_once_and_cached() {
    let old = DevKey::generate_es256("old").unwrap();
    let idp = Idp::start().await;
    let keys_at = |body: String| Reply::json(body).with_header("cache-control", "public, max-age=3600");
    idp.set("/jwks.json", keys_at(old.jwks_json().unwrap()));
    let url = KeyUrl::parse(&idp.url("/jwks.json")).unwrap();
    let config = config(KeySource::Url(url.clone()));
    // The one test of the refetch gap in real time (unit tests judge it on
    // times given): long enough that a loaded machine verifies the tokens
    // below within it.
    let gap = Duration::from_secs(1);
    let gaps = Gaps { refetch: gap, ..Gaps::default() };
    let keys = Keys::Provider(Arc::new(ProviderKeys::new(KeyLocation::Jwks(url), None, gaps).unwrap()));
    let verifier = JwtVerifier::with_keys(&config, keys);
    // Warm-up starts the fetch in the background; the first token waits for it.
    verifier.keys().warm_up().await;
    let hits = || idp.hits("/jwks.json");
    for _ in 0..5 {
        assert_eq!(verify(&verifier, &old.sign(&claims()).unwrap()).await, Ok("user-1".into()));
    }
    assert_eq!(hits(), 1, "served from the cache");

    // The IdP rotates its key. A token with the new kid triggers one
    // refetch, but not before the gap has passed.
    let new = DevKey::generate_es256("new").unwrap();
    idp.set("/jwks.json", keys_at(jwks_json(&[&old, &new]).unwrap()));
    let rotated = new.sign(&claims()).unwrap();
    assert_eq!(verify(&verifier, &rotated).await, Err(JwtError::Invalid));
    assert_eq!(verify(&verifier, &rotated).await, Err(JwtError::Invalid));
    assert_eq!(hits(), 1, "no refetch within the gap");
    tokio::time::sleep(gap + Duration::from_millis(50)).await;
    assert_eq!(verify(&verifier, &rotated).await, Ok("user-1".into()));
    assert_eq!(verify(&verifier, &rotated).await, Ok("user-1".into()));
    assert_eq!(hits(), 2, "one refetch for the new kid");
    // Unknown kids cannot make it fetch in a loop.
    let stranger = DevKey::generate_es256("stranger").unwrap().sign(&claims()).unwrap();
    for _ in 0..5 {
        assert_eq!(verify(&verifier, &stranger).await, Err(JwtError::Invalid));
    }
    assert_eq!(hits(), 2);
}

#[tokio::test]
async fn unreachable_keys_are_an_internal_error_until_they_come_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let url = KeyUrl::parse(&format!("http://{address}/jwks.json")).unwrap();
    drop(listener); // nothing listens there now
                    // No retry gap: the gap is judged in unit tests, on times given.
    let gaps = Gaps { retry: Duration::ZERO, ..Gaps::default() };
    let keys = Keys::Provider(Arc::new(ProviderKeys::new(KeyLocation::Jwks(url.clone()), None, gaps).unwrap()));
    let verifier = JwtVerifier::with_keys(&config(KeySource::Url(url)), keys);
    verifier.keys().warm_up().await; // logs, does not fail
    let key = DevKey::generate_es256("k").unwrap();
    let token = key.sign(&claims()).unwrap();
    assert!(matches!(verify(&verifier, &token).await, Err(JwtError::KeysUnavailable(_))));
    // A forged token never reaches the key fetch.
    assert_eq!(verify(&verifier, "a.b.c").await, Err(JwtError::Invalid));

    // The provider comes back at the same address: the next token fetches
    // the keys and is verified.
    let idp = Idp::start_at(&address).await;
    idp.set("/jwks.json", Reply::json(key.jwks_json().unwrap()));
    assert_eq!(verify(&verifier, &token).await, Ok("user-1".into()));
    assert_eq!(idp.hits("/jwks.json"), 1);
}
