//! The `delete-token` Lambda function: everything reusable is built here,
//! once, at init; requests only use it.

use std::process::ExitCode;
use std::sync::Arc;

use netbird_delete_token::app::App;
use netbird_delete_token::config::{Config, LogSettings};
use netbird_delete_token::http::lambda;
use netbird_delete_token::storage::{client, dynamo::DynamoStore};
use netbird_delete_token::telemetry;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    telemetry::init_logging(&LogSettings::from_lookup(env));
    // The entry point turns a panic into a 500; keep its report to one log line.
    std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "recovered from a panic")));
    let config = match Config::from_lookup(env) {
        Ok(config) => config,
        Err(err) => {
            tracing::error!("invalid configuration: {err}");
            return ExitCode::FAILURE;
        }
    };
    let store = Arc::new(DynamoStore::new(client::dynamodb_client(config.dynamodb_endpoint.as_deref()).await, &config));
    let app = match App::new(&config, store.clone(), store.key_cache()) {
        Ok(app) => Arc::new(app),
        Err(err) => {
            tracing::error!("invalid JWT key configuration: {err}");
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
