//! Fetching the identity provider's documents, its OpenID configuration
//! and its key set, within the rules and limits of spec §6 and §7.

use std::time::Duration;

use reqwest::redirect::{Attempt, Policy};

use crate::config::KeyUrl;
use crate::deadline::{Deadline, TooLate};

pub const MAX_BYTES: usize = 1024 * 1024;
pub const TIMEOUT: Duration = Duration::from_secs(3);
const MAX_REDIRECTS: usize = 5;
const IDLE_CONNECTION: Duration = Duration::from_secs(10);

/// A document and how long its server says it may be cached.
pub struct Fetched {
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, as sent (callers clamp it).
    pub max_age: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the document is larger than 1 MiB")]
    TooLarge,
    #[error(transparent)]
    NotSent(#[from] TooLate),
    #[error("no whole answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("{0}")]
    Http(String),
}

pub struct Fetcher {
    http: reqwest::Client,
}

impl Fetcher {
    pub fn new() -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .redirect(Policy::custom(same_origin_redirects))
            // The OpenID configuration and the key set share a connection;
            // the next refresh, after a pause or a freeze the server may
            // have closed it in, opens its own.
            .pool_idle_timeout(IDLE_CONNECTION)
            .build()
            .map_err(|e| FetchError::Http(e.to_string()))?;
        Ok(Fetcher { http })
    }

    /// `url`'s document, within `deadline`.
    pub async fn get(&self, url: &KeyUrl, deadline: &Deadline) -> Result<Fetched, FetchError> {
        let budget = deadline.budget(TIMEOUT)?;
        let fail = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::TimedOut(budget)
            } else {
                FetchError::Http(e.without_url().to_string())
            }
        };
        let request = self.http.get(url.as_url().clone()).timeout(budget);
        let mut response = request.send().await.map_err(fail)?.error_for_status().map_err(fail)?;
        let max_age =
            response.headers().get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }
}

/// A redirect is followed only within the same origin (scheme, host and
/// port): never from https down to http, never to another server or to
/// another service on the same host.
fn same_origin_redirects(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first() else { return attempt.stop() };
    if attempt.url().origin() != first.origin() {
        let error = format!(
            "refused a redirect to another origin: scheme, host or port ({})",
            attempt.url().origin().ascii_serialization()
        );
        attempt.error(error)
    } else if attempt.previous().len() > MAX_REDIRECTS {
        attempt.error("too many redirects")
    } else {
        attempt.follow()
    }
}

/// `max-age` of a `Cache-Control` header, in whole seconds.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("max-age").then_some(())?;
        value.trim().trim_matches('"').parse().ok().map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(max_age("public, max-age=600, must-revalidate"), Some(Duration::from_secs(600)));
        assert_eq!(max_age("Max-Age=\"5\""), Some(Duration::from_secs(5)));
        assert_eq!(max_age("max-age=18446744073709551615"), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(max_age("max-age=18446744073709551616"), None);
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
