//! Any string as a JWT: verification never panics and, with keys the
//! fuzzer does not hold, never succeeds.
#![no_main]

use std::sync::OnceLock;

use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;
use netbird_delete_token::config::{AuthConfig, KeySource};
use netbird_delete_token::devkeys::{jwks_json, DevKey};
use netbird_delete_token::jwt::JwtVerifier;

struct Setup {
    runtime: tokio::runtime::Runtime,
    verifier: JwtVerifier,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let es = DevKey::generate_es256("es").expect("key");
        let rs = DevKey::generate_rsa("rs", Algorithm::RS256).expect("key");
        let config = AuthConfig {
            issuer: "https://idp.fuzz/".into(),
            audiences: vec!["netbird".into()],
            keys: KeySource::Inline(jwks_json(&[&es, &rs]).expect("jwks")),
            user_id_claim: "sub".into(),
        };
        Setup {
            runtime: tokio::runtime::Builder::new_current_thread().build().expect("runtime"),
            verifier: JwtVerifier::new(&config).expect("verifier"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let setup = setup();
    assert!(setup.runtime.block_on(setup.verifier.verify(token)).is_err());
});
