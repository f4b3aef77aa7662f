//! Any bytes as a Lambda event, through the real entry point: always an
//! HTTP answer with a JSON body, never a panic or a runtime error.
#![no_main]

use std::sync::{Arc, OnceLock};

use aws_sdk_dynamodb::config::{Credentials, Region};
use libfuzzer_sys::fuzz_target;
use netbird_delete_token::config::Config;
use netbird_delete_token::devkeys::DevKey;
use netbird_delete_token::entry::handle_event;
use netbird_delete_token::handler::App;
use netbird_delete_token::sdk;
use serde_json::value::RawValue;

struct Setup {
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let key = DevKey::generate_es256("k").expect("key");
        let jwks = key.jwks_json().expect("jwks");
        let config = Config::from_lookup(|name| {
            Some(match name {
                "TOKENS_TABLE" => "tokens".into(),
                "USERS_TABLE" => "users".into(),
                "AUTH_ISSUER" => "https://idp.fuzz/".into(),
                "AUTH_AUDIENCE" => "netbird".into(),
                "AUTH_JWKS" => jwks.clone(),
                _ => return None,
            })
        })
        .expect("config");
        // Nothing listens on port 9, and nothing retries: a request that
        // gets as far as DynamoDB (a seed's well-formed PAT) fails at once.
        let client = runtime.block_on(async {
            let shared = sdk::sdk_config()
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("fuzz", "fuzz", None, None, "fuzz"))
                .endpoint_url("http://127.0.0.1:9")
                .load()
                .await;
            aws_sdk_dynamodb::Client::new(&shared)
        });
        Setup { runtime, app: Arc::new(App::new(&config, client).expect("app")) }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(raw) = serde_json::from_str::<Box<RawValue>>(text) else { return };
    let setup = setup();
    let mut context = lambda_http::Context::default();
    context.request_id = "fuzz".into();
    let response = setup.runtime.block_on(handle_event(setup.app.clone(), &raw, context));
    let status = response["statusCode"].as_u64().expect("a status code");
    assert!((100..600).contains(&status));
    if let Some(body) = response["body"].as_str().filter(|b| !b.is_empty()) {
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        if status >= 400 {
            assert_eq!(body["code"].as_u64(), Some(status));
        }
    }
});
