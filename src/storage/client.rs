//! The DynamoDB client's setup: timeouts and retries (spec §7), TLS
//! trust, credentials. Region, credentials and `AWS_ENDPOINT_URL_DYNAMODB`
//! come from the environment, as for any SDK client.

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

/// Lambda gives up to 6 s on the default timeout (template.yaml); three
/// attempts of at most 1 s each, plus backoff, end well before it. Each
/// call also ends within the request's deadline (the store cuts the
/// operation timeout to the time left).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(3500);
const MAX_ATTEMPTS: u32 = 3;

/// The roots that sign AWS's own service endpoints (Amazon Trust Services).
const AMAZON_TRUST_ROOTS: &[u8] = include_bytes!("amazon-trust-roots.pem");

/// The function's DynamoDB client; `custom_endpoint` is the
/// `AWS_ENDPOINT_URL_DYNAMODB` the SDK reads too.
pub async fn dynamodb_client(custom_endpoint: Option<&str>) -> Client {
    Client::new(&sdk_config(custom_endpoint).load().await)
}

/// The function's timeouts, standard retries, TLS trust and credentials,
/// open to further settings (the tests point it at a proxy).
pub fn sdk_config(custom_endpoint: Option<&str>) -> aws_config::ConfigLoader {
    let timeouts = timeouts(OPERATION_TIMEOUT);
    // Lambda's own variables, as every SDK client reads them.
    let env = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    // Stalled-stream protection guards long transfers; these bodies are a
    // few hundred bytes under a 1 s attempt timeout.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .http_client(https_client(custom_endpoint, env("AWS_REGION")));
    // Lambda hands the role's credentials over in the environment: read
    // them there, without building the default chain's STS, SSO and IMDS
    // clients at every cold start. Elsewhere the default chain applies.
    if env("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
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
