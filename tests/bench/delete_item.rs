//! The round-trip floor for `make bench`: a `lambda_http` function that
//! makes the function's own conditional `DeleteItem` (`Store::delete_token`)
//! and nothing else, with the same SDK settings, profile and runtime
//! flavour. Deletes (`floor`, the `tokenId` path parameter) in `FLOOR_ACCOUNT`.

use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};
use netbird_delete_token::config::Config;
use netbird_delete_token::store::{self, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let store = Store::new(store::dynamodb_client().await, &Config::from_env()?);
    let account = std::env::var("FLOOR_ACCOUNT")?;
    let (store, account) = (&store, account.as_str());
    lambda_http::run(service_fn(move |req: Request| async move {
        let token_id = req.path_parameters_ref().and_then(|p| p.first("tokenId")).unwrap_or_default();
        let status = match store.delete_token("floor", token_id, account).await? {
            Some(_) => 200,
            None => 404,
        };
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .map_err(Error::from)
    }))
    .await
}
