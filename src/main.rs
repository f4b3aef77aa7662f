//! The `delete-token` Lambda function: everything reusable is built here,
//! once, at init; requests only use it.

use std::process::ExitCode;
use std::sync::Arc;

use netbird_delete_token::app::App;
use netbird_delete_token::config::{Config, ConfigError, LogSettings};
use netbird_delete_token::http::lambda;
use netbird_delete_token::storage::dynamo::DynamoStore;
use netbird_delete_token::telemetry;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    telemetry::init_logging(&LogSettings::from_lookup(env));
    // The entry point turns a panic into a 500; keep its report to one log line.
    std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "recovered from a panic")));
    let app = match init(env).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!("invalid configuration: {err}");
            return ExitCode::FAILURE;
        }
    };
    app.warm_up().await;
    match lambda::run(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("Lambda runtime stopped: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The settings, the DynamoDB client and the app; every way this can fail
/// names the setting at fault (spec §6).
async fn init(env: impl Fn(&str) -> Option<String>) -> Result<Arc<App<DynamoStore>>, ConfigError> {
    let config = Config::from_lookup(env)?;
    let store = Arc::new(DynamoStore::connect(&config).await?);
    Ok(Arc::new(App::new(&config, store)?))
}
