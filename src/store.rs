//! The one place that talks to DynamoDB (contract §5 and §7).

use std::collections::HashMap;
use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder as HttpClientBuilder;

use crate::config::Config;
use crate::user::{Role, User};

/// Lambda gives up to 6 s on the default timeout (template.yaml); three
/// attempts of at most 1 s each, plus backoff, end well before it.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(3500);
const MAX_ATTEMPTS: u32 = 3;

pub const HASHED_TOKEN_INDEX: &str = "hashedToken-index";

/// The key the warm-up reads; no token hash can equal it (base64 has no
/// spaces), and whatever it finds is ignored.
const WARM_UP_KEY: &str = "warm up";

type Item = HashMap<String, AttributeValue>;

/// A DynamoDB call failed; the detail is for logs only.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation} failed: {detail}")]
pub struct StoreError {
    pub operation: &'static str,
    detail: String,
}

/// Service errors by code and message only: their raw response is noise.
pub fn store_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| {
        let detail = match &e {
            SdkError::ServiceError(se) => {
                format!("{}: {}", se.err().code().unwrap_or("unknown"), se.err().message().unwrap_or_default())
            }
            _ => DisplayErrorContext(&e).to_string(),
        };
        StoreError { operation, detail }
    }
}

/// The token row a PAT resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub user_id: String,
    pub token_id: String,
    pub expires_at: Option<i64>,
}

/// What the delete removed, for the audit line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedToken {
    pub name: String,
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    tokens_table: String,
    users_table: String,
}

/// The roots that sign AWS's own service endpoints (Amazon Trust Services).
const AMAZON_TRUST_ROOTS: &[u8] = include_bytes!("amazon-trust-roots.pem");

/// The SDK client with this function's timeouts and retries. Region,
/// credentials and `AWS_ENDPOINT_URL_DYNAMODB` come from the environment.
pub async fn dynamodb_client() -> Client {
    Client::new(&sdk_config().load().await)
}

/// This function's timeouts, standard retries, TLS trust and credentials,
/// for further settings.
pub fn sdk_config() -> aws_config::ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let env = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    // Stalled-stream protection guards long transfers; these bodies are a
    // few hundred bytes under a 1 s attempt timeout, so it only costs CPU.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .http_client(https_client(env("AWS_ENDPOINT_URL_DYNAMODB").as_deref(), env("AWS_REGION")));
    // Lambda hands the role's credentials over in the environment: read
    // them there, without building the default chain's STS, SSO and IMDS
    // clients at every cold start. Elsewhere the default chain applies.
    if env("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader
}

/// AWS's own DynamoDB endpoints are signed by Amazon's roots: trusting only
/// those spares parsing the system's whole CA bundle at every cold start.
/// A custom https endpoint (a proxy, say) or a China region gets the
/// system's roots; a plain-http one (DynamoDB Local) needs none.
fn https_client(custom_endpoint: Option<&str>, region: Option<String>) -> SharedHttpClient {
    let china = region.is_some_and(|r| r.starts_with("cn-"));
    let custom_tls = custom_endpoint.is_some_and(|url| !url.starts_with("http://"));
    let trust = if custom_tls || china {
        TrustStore::default()
    } else {
        TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_TRUST_ROOTS)
    };
    let builder = HttpClientBuilder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        Err(_) => builder.build_https(),
    }
}

impl Store {
    pub fn new(client: Client, config: &Config) -> Self {
        Store { client, tokens_table: config.tokens_table.clone(), users_table: config.users_table.clone() }
    }

    /// Two cheap reads during init, while Lambda gives the CPU in full: the
    /// first request then pays for no DNS, TCP, TLS or credentials, and finds
    /// open the two connections a request may use at once (a PAT's
    /// UpdateItem beside a GetItem; two users' GetItems). GetItem is the
    /// cheapest read: a Query on the index made init ~1 ms slower in
    /// `make bench`, all of it spent by the server.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        let (first, second) = tokio::join!(self.user(WARM_UP_KEY), self.user(WARM_UP_KEY));
        first.and(second).map(|_| ())
    }

    /// Strongly consistent: a user blocked a moment ago is blocked now.
    pub async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.users_table)
            .key("userId", AttributeValue::S(user_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        Ok(out.item.as_ref().and_then(user_from_item))
    }

    pub async fn token_by_hash(&self, hashed_token: &str) -> Result<Option<TokenRow>, StoreError> {
        let out = self.token_by_hash_request(hashed_token).send().await.map_err(store_error("Query"))?;
        Ok(out.items().iter().find(|item| s(item, "hashedToken") == Some(hashed_token)).and_then(token_from_item))
    }

    /// Records a PAT's use; never recreates a token deleted meanwhile.
    pub async fn mark_used(&self, token: &TokenRow, now: i64) -> Result<(), StoreError> {
        match self.mark_used_request(token, now).send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(store_error("UpdateItem")(e)),
        }
    }

    /// Deletes the token if it is `user_id`'s and in `account_id`; `None`
    /// when there is no such token (contract §5: one conditional DeleteItem).
    pub async fn delete_token(
        &self,
        user_id: &str,
        token_id: &str,
        account_id: &str,
    ) -> Result<Option<DeletedToken>, StoreError> {
        match self.delete_request(user_id, token_id, account_id).send().await {
            Ok(out) => {
                let name = out.attributes.as_ref().and_then(|item| s(item, "name")).unwrap_or_default();
                Ok(Some(DeletedToken { name: name.into() }))
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(store_error("DeleteItem")(e)),
        }
    }

    fn token_by_hash_request(&self, hashed_token: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.tokens_table)
            .index_name(HASHED_TOKEN_INDEX)
            .key_condition_expression("hashedToken = :h")
            .expression_attribute_values(":h", AttributeValue::S(hashed_token.into()))
            .limit(1)
    }

    fn mark_used_request(&self, token: &TokenRow, now: i64) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.tokens_table)
            .key("userId", AttributeValue::S(token.user_id.clone()))
            .key("tokenId", AttributeValue::S(token.token_id.clone()))
            .update_expression("SET lastUsed = :now")
            .condition_expression("attribute_exists(tokenId)")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
    }

    fn delete_request(&self, user_id: &str, token_id: &str, account_id: &str) -> DeleteItemFluentBuilder {
        self.client
            .delete_item()
            .table_name(&self.tokens_table)
            .key("userId", AttributeValue::S(user_id.into()))
            .key("tokenId", AttributeValue::S(token_id.into()))
            .condition_expression("attribute_exists(tokenId) AND accountId = :account")
            .expression_attribute_values(":account", AttributeValue::S(account_id.into()))
            .return_values(ReturnValue::AllOld)
    }

}

fn s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse::<f64>().ok().map(|v| v as i64)
}

fn flag(item: &Item, name: &str) -> bool {
    item.get(name).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
}

fn user_from_item(item: &Item) -> Option<User> {
    Some(User {
        id: s(item, "userId")?.into(),
        account_id: s(item, "accountId")?.into(),
        role: s(item, "role").map_or(Role::Unknown, Role::parse),
        is_service_user: flag(item, "isServiceUser"),
        service_user_name: s(item, "serviceUserName").map(str::to_owned),
        blocked: flag(item, "blocked"),
        pending_approval: flag(item, "pendingApproval"),
    })
}

fn token_from_item(item: &Item) -> Option<TokenRow> {
    Some(TokenRow {
        user_id: s(item, "userId")?.into(),
        token_id: s(item, "tokenId")?.into(),
        expires_at: n(item, "expiresAt"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn users_default_to_least_privilege() {
        let row = item(&[("userId", AttributeValue::S("u".into())), ("accountId", AttributeValue::S("a".into()))]);
        let user = user_from_item(&row).unwrap();
        assert_eq!(user.role, Role::Unknown);
        assert!(!user.is_service_user && !user.blocked && !user.pending_approval);
        let wrong_type = item(&[
            ("userId", AttributeValue::S("u".into())),
            ("accountId", AttributeValue::S("a".into())),
            ("blocked", AttributeValue::S("true".into())),
        ]);
        assert!(!user_from_item(&wrong_type).unwrap().blocked);
        assert!(user_from_item(&item(&[("userId", AttributeValue::S("u".into()))])).is_none());
    }

    #[test]
    fn token_expiry_reads_numbers_only() {
        let mut row = item(&[("userId", AttributeValue::S("u".into())), ("tokenId", AttributeValue::S("t".into()))]);
        assert_eq!(token_from_item(&row).unwrap().expires_at, None);
        row.insert("expiresAt".into(), AttributeValue::N("1700000000".into()));
        assert_eq!(token_from_item(&row).unwrap().expires_at, Some(1_700_000_000));
        row.insert("expiresAt".into(), AttributeValue::S("1700000000".into()));
        assert_eq!(token_from_item(&row).unwrap().expires_at, None);
    }
}
