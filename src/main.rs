//! The `delete-token` Lambda function: everything reusable is built here,
//! once, at init; requests only use it.

use std::process::ExitCode;
use std::sync::Arc;

use netbird_delete_token::app::App;
use netbird_delete_token::config::Config;
use netbird_delete_token::http::lambda;
use netbird_delete_token::storage::client;
use netbird_delete_token::telemetry;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    telemetry::init_logging();
    // The entry point turns a panic into a 500; keep its report to one log line.
    std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "recovered from a panic")));
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            tracing::error!("invalid configuration: {err}");
            return ExitCode::FAILURE;
        }
    };
    let app = match App::new(&config, client::dynamodb_client().await) {
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
