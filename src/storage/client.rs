//! The DynamoDB client's setup: timeouts and retries (spec §7), TLS
//! trust, credentials, and an endpoint override that cannot hand who is
//! authenticated to another machine (spec §6). Region, credentials and the
//! endpoint come from the environment, as for any SDK client.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder as HttpClientBuilder;
use aws_types::service_config::ServiceConfigKey;

use crate::config::{loopback_url, ConfigError};

/// Lambda gives up to 6 s on the default timeout (template.yaml); three
/// attempts of at most 1 s each, plus backoff, end well before it. Each
/// call also ends within the request's deadline (the store cuts the
/// operation timeout to the time left).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(3500);
pub const MAX_ATTEMPTS: u32 = 3;

/// The roots that sign AWS's own service endpoints (Amazon Trust Services).
const AMAZON_TRUST_ROOTS: &[u8] = include_bytes!("amazon-trust-roots.pem");

/// The function's DynamoDB client, from `loader`'s settings (region,
/// credentials and endpoint, as any SDK client reads them); an endpoint
/// override in plain http to another machine is refused (spec §6).
pub async fn dynamodb_client(loader: aws_config::ConfigLoader) -> Result<Client, ConfigError> {
    let sdk = loader.load().await;
    let endpoint = endpoint_of(&sdk);
    if let Some(url) = endpoint.as_deref().filter(|url| !is_secure(url)) {
        return Err(ConfigError::InsecureDynamoDbEndpoint(url.to_owned()));
    }
    let china = sdk.region().is_some_and(|r| r.as_ref().starts_with("cn-"));
    let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
    config.set_endpoint_url(endpoint.clone());
    let config = config.http_client(https_client(endpoint.as_deref(), china)).build();
    Ok(Client::from_conf(config))
}

/// The endpoint the SDK would use for DynamoDB: one set in code, else
/// `AWS_ENDPOINT_URL_DYNAMODB` (or a config file's `services` section),
/// else `AWS_ENDPOINT_URL` (or a config file's `endpoint_url`), as
/// aws-sdk-dynamodb chooses it; pinned on the client, so the one checked
/// is the one used.
fn endpoint_of(sdk: &aws_config::SdkConfig) -> Option<String> {
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_owned);
    }
    let key =
        ServiceConfigKey::builder().service_id("DynamoDB").env("AWS_ENDPOINT_URL").profile("endpoint_url").build();
    let service = key.ok().and_then(|key| sdk.service_config()?.load_config(key));
    service.or_else(|| sdk.endpoint_url().map(str::to_owned))
}

/// `https://`, or `http://` to this machine (DynamoDB Local).
fn is_secure(url: &str) -> bool {
    url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) || loopback_url(url).is_some()
}

/// The function's settings for every SDK client: timeouts, standard
/// retries, credentials. The tests point it elsewhere with `endpoint_url`.
pub fn loader() -> aws_config::ConfigLoader {
    // Stalled-stream protection guards long transfers; these bodies are a
    // few hundred bytes under a 1 s attempt timeout.
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(timeouts(OPERATION_TIMEOUT))
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    // Lambda hands the role's credentials over in the environment: read
    // them there, without building the default chain's STS, SSO and IMDS
    // clients at every cold start. Elsewhere the default chain applies.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty()) {
        return loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader
}

/// The function's timeouts, with every call (retries included) ending
/// within `operation`.
pub fn timeouts(operation: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(operation))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT.min(operation))
        .operation_timeout(operation)
        .build()
}

/// AWS's own DynamoDB endpoints are signed by Amazon's roots: trusting only
/// those spares parsing the system's whole CA bundle at every cold start.
/// A custom https endpoint (a proxy, say) or a China region gets the
/// system's roots; a plain-http one (DynamoDB Local) needs none.
fn https_client(custom_endpoint: Option<&str>, china: bool) -> SharedHttpClient {
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn endpoint(set: Option<&str>) -> Result<(), ConfigError> {
        let loader =
            set.map_or_else(loader, |url| loader().endpoint_url(url)).region(aws_config::Region::new("us-east-1"));
        dynamodb_client(loader).await.map(|_| ())
    }

    #[tokio::test]
    async fn a_dynamodb_endpoint_in_plain_http_must_be_this_machine() {
        for fine in [None, Some("https://dynamodb.example"), Some("http://127.0.0.1:8000"), Some("http://localhost:1")]
        {
            assert_eq!(endpoint(fine).await, Ok(()), "{fine:?}");
        }
        for insecure in
            ["http://dynamodb.example", "http://10.0.0.1:8000", "HTTP://169.254.169.254", "dynamodb.example"]
        {
            let refused = Err(ConfigError::InsecureDynamoDbEndpoint(insecure.into()));
            assert_eq!(endpoint(Some(insecure)).await, refused, "{insecure}");
        }
    }
}
