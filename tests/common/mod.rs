//! A real stack for the tests: DynamoDB Local (started by
//! `scripts/with-dynamodb-local`), tables created from template.yaml by
//! `devstack`, and the real handler fed real event JSON.

pub mod calls;
pub mod faults;
pub mod http1;
pub mod idp;
pub mod runtime_api;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use jsonwebtoken::Algorithm;
use netbird_delete_token::app::App;
use netbird_delete_token::auth::pat;
use netbird_delete_token::auth::provider::cache::CachedKeySet;
pub use netbird_delete_token::clock::{unix_millis as now_ms, unix_seconds as now};
use netbird_delete_token::config::Config;
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::devkeys::{jwks_json, DevKey};
use netbird_delete_token::domain::store::Store;
pub use netbird_delete_token::domain::{PersonalAccessToken, Role, User};
use netbird_delete_token::http::lambda::answer_event;
use netbird_delete_token::storage::client as sdk;
use netbird_delete_token::storage::dynamo::DynamoStore;
use netbird_delete_token::storage::items::KeyCacheItem;
pub use netbird_delete_token::storage::items::{attr, Row};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://idp.test/";
pub const AUDIENCE: &str = "netbird-test";
pub const ACCOUNT: &str = "acc-1";

/// DynamoDB Local's address; the tests cannot run without it.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test` (scripts/with-dynamodb-local)")
    })
}

pub struct Keys {
    pub es256: DevKey,
    pub rs256: DevKey,
}

impl Keys {
    pub fn new() -> Self {
        Keys {
            es256: DevKey::generate_es256("es-key").unwrap(),
            rs256: DevKey::generate_rsa("rs-key", Algorithm::RS256).unwrap(),
        }
    }

    pub fn jwks(&self) -> String {
        jwks_json(&[&self.es256, &self.rs256]).unwrap()
    }

    pub fn jwt(&self, sub: &str) -> String {
        self.es256.sign(&claims(sub)).unwrap()
    }
}

pub fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600 })
}

pub struct Stack {
    /// Where the function reaches DynamoDB: a proxy that records its calls.
    pub dynamodb: String,
    /// The function's settings (a later one of a name wins), its DynamoDB
    /// endpoint aside.
    env: Vec<(&'static str, String)>,
    pub client: Client,
    pub config: Config,
    pub keys: Keys,
    /// The function's store, as its App uses it.
    pub store: Arc<DynamoStore>,
    pub app: Arc<App<DynamoStore>>,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Stack {
    /// Fresh, uniquely named tables from template.yaml, and an App on
    /// them, reaching DynamoDB Local through a proxy that only records.
    pub async fn new() -> Stack {
        Self::with_settings(&[]).await
    }

    /// [`Stack::new`] with `settings` (NetBird's rate limit, say) as well.
    pub async fn with_settings(settings: &[(&'static str, &str)]) -> Stack {
        let recorder = faults::FaultProxy::start(&endpoint()).await;
        Self::build(&recorder.endpoint, settings).await
    }

    /// The tables are created on DynamoDB Local; the function talks to
    /// `function_endpoint` (a fault-injecting proxy, or nothing at all).
    pub async fn with_endpoint(function_endpoint: &str) -> Stack {
        Self::build(function_endpoint, &[]).await
    }

    async fn build(function_endpoint: &str, settings: &[(&'static str, &str)]) -> Stack {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let suffix = format!("{}-{}-{}", std::process::id(), now(), NEXT.fetch_add(1, Ordering::Relaxed));
        let keys = Keys::new();
        let mut env = vec![
            ("TOKENS_TABLE", format!("tokens-{suffix}")),
            ("USERS_TABLE", format!("users-{suffix}")),
            ("KEY_CACHE_TABLE", format!("keys-{suffix}")),
            ("AUTH_ISSUER", ISSUER.to_owned()),
            ("AUTH_AUDIENCE", format!("other,{AUDIENCE}")),
            ("AUTH_JWKS", keys.jwks()),
        ];
        env.extend(settings.iter().map(|(k, v)| (*k, v.to_string())));
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_devstack"))
            .args(["tables", "--template", concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")])
            .envs(env[..3].iter().cloned())
            .status()
            .expect("devstack runs");
        assert!(status.success(), "devstack tables failed");
        let config = Config::from_lookup(|name| env.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.clone()));
        let config = config.unwrap();
        let client = Client::new(&aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await);
        let function_client = sdk::dynamodb_client(sdk::loader().endpoint_url(function_endpoint)).await.unwrap();
        let store = Arc::new(DynamoStore::new(function_client, &config));
        let app = Arc::new(App::new(&config, store.clone()).unwrap());
        Stack { dynamodb: function_endpoint.to_owned(), env, client, config, keys, store, app }
    }

    /// The provider's keys as the fleet's cache holds them for `source`.
    pub async fn cache_keys(&self, source: String, entry: CachedKeySet) {
        let row = KeyCacheItem { source, entry }.to_item();
        let table = self.config.key_cache_table.as_deref().unwrap();
        self.client.put_item().table_name(table).set_item(Some(row)).send().await.unwrap();
    }

    /// The function's settings for these tables, talking to `endpoint`.
    pub fn function_env(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env.clone();
        env.push(("AWS_ENDPOINT_URL_DYNAMODB", endpoint.into()));
        env
    }

    pub async fn user(&self, id: &str, account: &str, role: &str) {
        self.put_user(id, account, role, &[]).await;
    }

    /// A user row, with `extra` attributes written over it as they are
    /// (of any type: the function must cope with what the table holds).
    pub async fn put_user(&self, id: &str, account: &str, role: &str, extra: &[(&str, AttributeValue)]) {
        let mut item = user_row(id, account, role).to_item();
        item.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.client.put_item().table_name(&self.config.users_table).set_item(Some(item)).send().await.unwrap();
    }

    pub async fn service_user(&self, id: &str, account: &str, name: &str) {
        let row = User { is_service_user: true, service_user_name: Some(name.into()), ..user_row(id, account, "user") };
        self.client.put_item().table_name(&self.config.users_table).set_item(Some(row.to_item())).send().await.unwrap();
    }

    /// A token row for `user` in `account`; returns its plain PAT.
    pub async fn token(&self, user: &str, token_id: &str, account: &str, expires_at: Option<i64>) -> String {
        let plain = pat::generate().unwrap();
        let item = PersonalAccessToken {
            user_id: user.into(),
            token_id: token_id.into(),
            account_id: account.into(),
            name: format!("name of {token_id}"),
            hashed_token: pat::hash_token(&plain),
            expires_at,
            created_at: Some(now()),
            created_by: Some(user.into()),
            last_used: None,
            rate_limited_until: None,
        }
        .to_item();
        self.client.put_item().table_name(&self.config.tokens_table).set_item(Some(item)).send().await.unwrap();
        plain
    }

    /// A token valid for a day.
    pub async fn live_token(&self, user: &str, token_id: &str) -> String {
        self.token(user, token_id, ACCOUNT, Some(now() + 86_400)).await
    }

    /// Every (userId, tokenId) in the tokens table, sorted.
    pub async fn tokens(&self) -> Vec<(String, String)> {
        let items =
            self.client.scan().table_name(&self.config.tokens_table).send().await.unwrap().items.unwrap_or_default();
        let mut keys: Vec<_> = items
            .iter()
            .map(|item| PersonalAccessToken::from_item(item).unwrap())
            .map(|t| (t.user_id.to_string(), t.token_id.to_string()))
            .collect();
        keys.sort();
        keys
    }

    /// The token's row, read as the store reads it, straight from DynamoDB
    /// Local (not a call of the function's).
    pub async fn token_item(&self, user: &str, token_id: &str) -> Option<PersonalAccessToken> {
        let store = DynamoStore::new(self.client.clone(), &self.config);
        store.token(&user.into(), &token_id.into(), &Deadline::Unknown).await.unwrap()
    }

    /// Runs `event` through the real entry point, as Lambda would.
    pub async fn call(&self, event: &Value) -> Answer {
        let mut context = lambda_http::Context::default();
        context.request_id = "req-test-1".into();
        context.deadline = now_ms() + 6_000;
        let raw = serde_json::value::to_raw_value(event).unwrap();
        http_answer(answer_event(self.app.clone(), &raw, context).await)
    }
}

/// The JSON Lambda returns, read as an HTTP answer whatever the event source.
pub fn http_answer(response: Value) -> Answer {
    let status = response["statusCode"].as_u64().unwrap() as u16;
    let body = match response["body"].as_str() {
        Some(text) if !text.is_empty() => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    Answer { status, body }
}

pub fn error(status: u16, message: &str) -> (u16, Value) {
    (status, json!({ "message": message, "code": status }))
}

fn headers(authorization: Option<&str>) -> Value {
    let mut headers = json!({ "host": "api.example.com", "content-length": "0" });
    if let Some(a) = authorization {
        headers["authorization"] = json!(a);
    }
    headers
}

pub fn http_api_event(method: &str, user: &str, token: &str, authorization: Option<&str>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "DELETE /api/users/{userId}/tokens/{tokenId}",
        "rawPath": format!("/api/users/{}/tokens/{}", encode(user), encode(token)),
        "rawQueryString": "",
        "headers": headers(authorization),
        "pathParameters": { "userId": user, "tokenId": token },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": { "method": method, "path": format!("/api/users/{}/tokens/{}", encode(user), encode(token)),
                      "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test" },
            "requestId": "apigw-1", "routeKey": "DELETE /api/users/{userId}/tokens/{tokenId}", "stage": "$default",
            "time": "29/Nov/2026:00:00:00 +0000", "timeEpoch": 1795000000000i64
        },
        "isBase64Encoded": false
    })
}

fn encode(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An active, unblocked user row that is not a service user.
fn user_row(id: &str, account: &str, role: &str) -> User {
    User {
        user_id: id.into(),
        account_id: account.into(),
        role: Role::parse(role),
        is_service_user: false,
        service_user_name: None,
        blocked: false,
        pending_approval: false,
    }
}
