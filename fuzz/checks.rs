//! What each fuzz target asserts, for any input. The cargo-fuzz targets in
//! `fuzz_targets/` call these; `tests/fuzz_seeds.rs` runs every committed
//! seed through them with `make test`, on the stable toolchain.

use std::sync::{Arc, OnceLock};

use jsonwebtoken::Algorithm;
use lambda_http::http::{HeaderValue, Method};
use netbird_delete_token::app::App;
use netbird_delete_token::auth::header::{parse, Credential, MAX_CREDENTIAL_LEN};
use netbird_delete_token::auth::jwt::JwtVerifier;
use netbird_delete_token::auth::pat::{from_secret, Pat, PREFIX, TOKEN_LEN};
use netbird_delete_token::config::Config;
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::devkeys::{jwks_json, DevKey};
use netbird_delete_token::http::lambda::answer_event;
use netbird_delete_token::http::route::{route, Route};
use netbird_delete_token::ids::is_valid_id;
use netbird_delete_token::storage::memory::MemoryStore;
use serde_json::value::RawValue;

/// The function's settings, read as the function reads them, with `jwks`
/// inline.
fn settings(jwks: String) -> Config {
    Config::from_lookup(|name| {
        Some(match name {
            "TOKENS_TABLE" => "tokens".into(),
            "USERS_TABLE" => "users".into(),
            "AUTH_ISSUER" => "https://idp.fuzz/".into(),
            "AUTH_AUDIENCE" => "netbird".into(),
            "AUTH_JWKS" => jwks.clone(),
            _ => return None,
        })
    })
    .expect("config")
}

/// Any `Authorization` header value: parsed without panicking; a PAT is
/// only ever accepted in its exact 40-character form.
pub fn authorization_header(data: &[u8]) {
    let Ok(header) = HeaderValue::from_bytes(data) else { return };
    match parse(Some(&header)) {
        Ok(Credential::Pat(pat)) => assert_eq!(pat.hash().len(), 44),
        Ok(Credential::Jwt(jwt)) => assert!(!jwt.is_empty() && jwt.len() <= MAX_CREDENTIAL_LEN),
        Err(_) => {}
    }
}

/// PAT parsing and checksums: never a panic; whatever is accepted is 40
/// characters with `nbp_`; any 30 base62 characters make a valid token.
pub fn pat(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if Pat::parse(text).is_ok() {
        assert!(text.len() == TOKEN_LEN && text.starts_with(PREFIX));
    }
    if let Some(token) = from_secret(text) {
        assert!(Pat::parse(&token).is_ok(), "a token made from a secret parses");
    }
}

/// Any method and raw path: routing never panics, and ids that pass
/// validation are always valid ids.
pub fn route_path(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(path) = std::str::from_utf8(rest) else { return };
    let method = [Method::DELETE, Method::GET, Method::OPTIONS, Method::POST][usize::from(selector % 4)].clone();
    let params = (selector & 0x80 != 0).then(|| path.split_once('\u{0}')).flatten();
    if let Ok(Route::Delete(target)) = route(&method, path, params) {
        assert_eq!(method, Method::DELETE);
        if let Ok((user_id, token_id)) = target.validated() {
            assert!(is_valid_id(user_id.as_str()) && is_valid_id(token_id.as_str()));
        }
    }
}

/// Any string as a JWT: verification never panics and, with keys the
/// fuzzer does not hold, never succeeds.
pub fn jwt(data: &[u8]) {
    struct Setup {
        runtime: tokio::runtime::Runtime,
        verifier: JwtVerifier<MemoryStore>,
    }
    static SETUP: OnceLock<Setup> = OnceLock::new();
    let setup = SETUP.get_or_init(|| {
        let es = DevKey::generate_es256("es").expect("key");
        let rs = DevKey::generate_rsa("rs", Algorithm::RS256).expect("key");
        let config = settings(jwks_json(&[&es, &rs]).expect("jwks"));
        Setup {
            runtime: tokio::runtime::Builder::new_current_thread().build().expect("runtime"),
            verifier: JwtVerifier::new(&config.auth, None).expect("verifier"),
        }
    });
    let Ok(token) = std::str::from_utf8(data) else { return };
    assert!(setup.runtime.block_on(setup.verifier.verify(token, &Deadline::Unknown)).is_err());
}

/// Any bytes as a Lambda event, through the real entry point: always an
/// HTTP answer with a JSON body, never a panic or a runtime error.
pub fn event(data: &[u8]) {
    struct Setup {
        runtime: tokio::runtime::Runtime,
        app: Arc<App<MemoryStore>>,
    }
    static SETUP: OnceLock<Setup> = OnceLock::new();
    let setup = SETUP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let config = settings(DevKey::generate_es256("k").expect("key").jwks_json().expect("jwks"));
        // Empty tables: a request that gets as far as them (a seed's
        // well-formed PAT) finds nothing.
        let app = App::new(&config, Arc::new(MemoryStore::default())).expect("app");
        Setup { runtime, app: Arc::new(app) }
    });
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(raw) = serde_json::from_str::<Box<RawValue>>(text) else { return };
    let mut context = lambda_http::Context::default();
    context.request_id = "fuzz".into();
    let response = setup.runtime.block_on(answer_event(setup.app.clone(), &raw, context));
    let status = response["statusCode"].as_u64().expect("a status code");
    assert!((100..600).contains(&status));
    if let Some(body) = response["body"].as_str().filter(|b| !b.is_empty()) {
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        if status >= 400 {
            assert_eq!(body["code"].as_u64(), Some(status));
        }
    }
}
