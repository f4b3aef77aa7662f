//! The round-trip floor for `make bench`: a `lambda_http` function that
//! makes the function's own conditional `DeleteItem` (`Store::delete_token`
//! of `DynamoStore`)
//! and nothing else, with the same SDK settings, profile and runtime
//! flavour. Deletes (`floor`, the `tokenId` path parameter) in `FLOOR_ACCOUNT`.

use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};
use netbird_delete_token::config::Config;
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::domain::store::{Deletion, Store};
use netbird_delete_token::ids::{AccountId, TokenId, UserId};
use netbird_delete_token::storage::client;
use netbird_delete_token::storage::dynamo::DynamoStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let store = DynamoStore::new(client::dynamodb_client(client::loader()).await?, &config);
    let account = AccountId::from(std::env::var("FLOOR_ACCOUNT")?);
    let user = UserId::from("floor");
    let (store, account, user) = (&store, &account, &user);
    lambda_http::run(service_fn(move |req: Request| async move {
        let token_id = TokenId::from(req.path_parameters_ref().and_then(|p| p.first("tokenId")).unwrap_or_default());
        let status = match store.delete_token(user, &token_id, account, &Deadline::Unknown).await? {
            Deletion::Deleted { .. } => 200,
            Deletion::NotFound | Deletion::Unconfirmed { .. } => 404,
        };
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .map_err(Error::from)
    }))
    .await
}
