//! The floor for `make bench`: a hello-world `lambda_http` function built
//! with the same profile and runtime flavour as `delete-token`.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_req: Request| async {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .map_err(Error::from)
    }))
    .await
}
