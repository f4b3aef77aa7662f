//! `devstack`: the local stack's helper. Creates the tables from
//! template.yaml, adds users and PATs, and mints JWTs with a local
//! development key, in the DynamoDB Local that `AWS_ENDPOINT_URL_DYNAMODB`
//! names (and nowhere else).
//!
//! ```text
//! devstack tables [--template template.yaml]
//! devstack user   --id ID --account ACCOUNT --role ROLE [--service NAME] [--blocked] [--pending]
//! devstack pat    --user ID [--name NAME] [--days 30] [--id TOKEN_ID]
//! devstack jwks   [--key .local/dev-key.p8]
//! devstack jwt    --user ID [--key ...] [--issuer ...] [--audience ...] [--hours 12]
//! devstack demo   [--key ...] [--base-url http://127.0.0.1:9000]
//! ```
//! Table names come from `TOKENS_TABLE`, `USERS_TABLE` and (optional)
//! `KEY_CACHE_TABLE`. It writes only
//! to a DynamoDB on this machine: the demo PATs are published in `events/`.

mod demo;
mod schema;

use std::collections::HashMap;
use std::process::ExitCode;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;
use jsonwebtoken::Algorithm;
use netbird_delete_token::auth::pat;
use netbird_delete_token::clock::unix_seconds;
use netbird_delete_token::config::loopback_url;
use netbird_delete_token::devkeys::DevKey;
use netbird_delete_token::domain::{PersonalAccessToken, Role, User};
use netbird_delete_token::storage::dynamo::store_error;
use netbird_delete_token::storage::items::{user_key, Row};

type Result<T> = std::result::Result<T, String>;

pub const DEFAULT_KEY: &str = ".local/dev-key.p8";
pub const DEFAULT_ISSUER: &str = "https://idp.netbird.local/";
pub const DEFAULT_AUDIENCE: &str = "netbird-local";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("devstack: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<()> {
    let (command, rest) =
        args.split_first().ok_or("usage: devstack tables|user|pat|jwks|jwt|demo [--flag value]...")?;
    let flags = Flags::parse(rest)?;
    match command.as_str() {
        "tables" => create_tables(&Env::load()?, &flags.get_or("template", "template.yaml")).await,
        "user" => {
            let env = Env::load()?;
            put_user(
                &env,
                &User {
                    user_id: flags.required("id")?.into(),
                    account_id: flags.required("account")?.into(),
                    role: Role::parse(&flags.required("role")?),
                    is_service_user: flags.has("service"),
                    service_user_name: flags.get("service"),
                    blocked: flags.has("blocked"),
                    pending_approval: flags.has("pending"),
                },
            )
            .await
        }
        "pat" => {
            let env = Env::load()?;
            let days: i64 = flags.get_or("days", "30").parse().map_err(|_| "--days takes a number")?;
            let user = flags.required("user")?;
            let id = flags.get_or("id", &format!("tok-{}", unix_seconds()));
            let token = pat::generate().map_err(|_| "no random bytes")?;
            add_pat(&env, &user, &id, &flags.get_or("name", "local"), days * 86_400, &token).await?;
            println!("{token}");
            Ok(())
        }
        "jwks" => {
            println!(
                "{}",
                load_or_create_key(&flags.get_or("key", DEFAULT_KEY))?.jwks_json().map_err(|e| e.to_string())?
            );
            Ok(())
        }
        "jwt" => {
            let key = load_or_create_key(&flags.get_or("key", DEFAULT_KEY))?;
            let hours: i64 = flags.get_or("hours", "12").parse().map_err(|_| "--hours takes a number")?;
            let jwt = mint_jwt(
                &key,
                &flags.required("user")?,
                &flags.get_or("issuer", DEFAULT_ISSUER),
                &flags.get_or("audience", DEFAULT_AUDIENCE),
                hours * 3600,
            )?;
            println!("{jwt}");
            Ok(())
        }
        "demo" => {
            let env = Env::load()?;
            let key = load_or_create_key(&flags.get_or("key", DEFAULT_KEY))?;
            demo::seed_and_print(&env, &key, &flags.get_or("base-url", "http://127.0.0.1:9000")).await
        }
        other => Err(format!("unknown command {other}")),
    }
}

pub struct Env {
    pub client: Client,
    pub tokens_table: String,
    pub users_table: String,
}

impl Env {
    /// The tables, on a DynamoDB Local that `AWS_ENDPOINT_URL_DYNAMODB`
    /// names; any other endpoint is refused before anything is written.
    /// The client is set up here, endpoint and dummy keys included, without
    /// the SDK's profile and environment chain: no profile setting
    /// (`ignore_configured_endpoint_urls`, a named profile's credentials)
    /// can send it to a real account.
    fn load() -> Result<Self> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} must be set"));
        let endpoint = var("AWS_ENDPOINT_URL_DYNAMODB")
            .map_err(|e| format!("{e}: devstack writes only to a DynamoDB Local on this machine"))?;
        if loopback_url(&endpoint).is_none() {
            return Err(format!(
                "AWS_ENDPOINT_URL_DYNAMODB={endpoint} is not a loopback address: devstack writes only to a \
                 DynamoDB Local on this machine (its demo PATs are published)"
            ));
        }
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "devstack"))
            .build();
        Ok(Env {
            client: Client::from_conf(config),
            tokens_table: var("TOKENS_TABLE")?,
            users_table: var("USERS_TABLE")?,
        })
    }
}

/// The tables, and the key cache table when `KEY_CACHE_TABLE` names one.
pub async fn create_tables(env: &Env, template_path: &str) -> Result<()> {
    let template = std::fs::read_to_string(template_path).map_err(|e| format!("{template_path}: {e}"))?;
    let key_cache = std::env::var("KEY_CACHE_TABLE").ok().filter(|name| !name.is_empty());
    let tables = [("TokensTable", Some(&env.tokens_table)), ("UsersTable", Some(&env.users_table))]
        .into_iter()
        .chain([("KeyCacheTable", key_cache.as_ref())]);
    for (logical_id, name) in tables {
        if let Some(name) = name {
            schema::create_table(&env.client, name, &schema::table_schema(&template, logical_id)?).await?;
        }
    }
    Ok(())
}

pub async fn put_user(env: &Env, user: &User) -> Result<()> {
    let item = user.to_item();
    env.client.put_item().table_name(&env.users_table).set_item(Some(item)).send().await.map_err(sdk("PutItem"))?;
    Ok(())
}

/// Stores `token` as a PAT of `user_id`, in the user's account.
pub async fn add_pat(env: &Env, user_id: &str, token_id: &str, name: &str, ttl_secs: i64, token: &str) -> Result<()> {
    let user_id = user_id.into();
    let row = env
        .client
        .get_item()
        .table_name(&env.users_table)
        .set_key(Some(user_key(&user_id)))
        .send()
        .await
        .map_err(sdk("GetItem"))?
        .item
        .ok_or_else(|| format!("no user {user_id}: add it first with `devstack user`"))?;
    let user = User::from_item(&row).map_err(|e| format!("user {user_id}: {e}"))?;
    let now = unix_seconds();
    let item = PersonalAccessToken {
        user_id: user_id.clone(),
        token_id: token_id.into(),
        account_id: user.account_id,
        name: name.into(),
        hashed_token: pat::hash_token(token),
        expires_at: Some(now + ttl_secs),
        created_at: Some(now),
        created_by: Some(user_id),
        last_used: None,
        rate_limited_until: None,
    }
    .to_item();
    env.client.put_item().table_name(&env.tokens_table).set_item(Some(item)).send().await.map_err(sdk("PutItem"))?;
    Ok(())
}

/// The development signing key, created on first use. Local only: the
/// file sits in the git-ignored `.local/`.
pub fn load_or_create_key(path: &str) -> Result<DevKey> {
    let kid = "netbird-local-dev";
    if let Ok(pkcs8) = std::fs::read(path) {
        return DevKey::from_pkcs8(kid, Algorithm::ES256, &pkcs8).map_err(|e| e.to_string());
    }
    let key = DevKey::generate_es256(kid).map_err(|e| e.to_string())?;
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, &key.pkcs8).map_err(|e| format!("{path}: {e}"))?;
    Ok(key)
}

pub fn mint_jwt(key: &DevKey, user_id: &str, issuer: &str, audience: &str, ttl_secs: i64) -> Result<String> {
    let now = unix_seconds();
    let claims =
        serde_json::json!({ "sub": user_id, "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl_secs });
    key.sign(&claims).map_err(|e| e.to_string())
}

/// A failed SDK call as the function reports it: code and message.
pub fn sdk<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| store_error(operation)(e).to_string()
}

struct Flags(HashMap<String, Option<String>>);

impl Flags {
    fn parse(args: &[String]) -> Result<Self> {
        let mut flags = HashMap::new();
        let mut iter = args.iter().peekable();
        while let Some(arg) = iter.next() {
            let name = arg.strip_prefix("--").ok_or_else(|| format!("unexpected argument {arg}"))?;
            let value = iter.next_if(|v| !v.starts_with("--")).cloned();
            flags.insert(name.to_owned(), value);
        }
        Ok(Flags(flags))
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().flatten()
    }

    fn get_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    fn required(&self, name: &str) -> Result<String> {
        self.get(name).ok_or_else(|| format!("--{name} is required"))
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}
