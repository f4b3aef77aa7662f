//! Settings from the environment (spec §6), validated once at init; the
//! SDK reads its own (`AWS_*`). Each is read through a lookup, so the
//! README's settings table can be held to this code.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;

use reqwest::Url;

/// NetBird's defaults for its rate limit (spec §9).
pub const DEFAULT_RPM: u32 = 6;
pub const DEFAULT_BURST: u32 = 500;
/// The claim that names the caller when `AUTH_USER_ID_CLAIM` is unset.
pub const DEFAULT_USER_ID_CLAIM: &str = "sub";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tokens_table: String,
    pub users_table: String,
    /// `KEY_CACHE_TABLE`: where every instance shares the identity
    /// provider's keys; without it each instance fetches its own.
    pub key_cache_table: Option<String>,
    pub auth: AuthConfig,
    /// NetBird's per-PAT rate limit (spec §9); `None` when off.
    pub rate_limit: Option<RateLimit>,
}

/// How the function logs: Lambda's advanced logging controls
/// (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`), or `RUST_LOG`. Read
/// before the rest, so that a bad setting is reported in the right format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// JSON lines, which Lambda filters by their `level`; else text.
    pub json: bool,
    /// Lambda's application log level (`TRACE` .. `FATAL`), as set.
    pub lambda_level: Option<String>,
    /// `RUST_LOG`, used when Lambda sets no level.
    pub rust_log: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME`: the metrics' dimension, so that stacks
    /// sharing an account and region never share a series.
    pub function_name: Option<String>,
}

impl LogSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        LogSettings {
            json: get("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
            lambda_level: get("AWS_LAMBDA_LOG_LEVEL"),
            rust_log: get("RUST_LOG"),
            function_name: get("AWS_LAMBDA_FUNCTION_NAME"),
        }
    }
}

/// A token bucket per PAT: `per_minute` refill, `burst` capacity; neither
/// can be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub user_id_claim: String,
    /// NetBird's JWT allowed groups (spec §10); `None` when not set.
    pub allowed_groups: Option<AllowedGroups>,
}

/// A JWT is accepted only if its `claim` names one of `groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedGroups {
    pub claim: String,
    pub groups: Vec<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `AUTH_JWKS`: the key set itself.
    Inline(String),
    /// `AUTH_KEYS_LOCATION`: where to fetch it.
    Url(KeyUrl),
    /// `AUTH_OIDC_CONFIG_ENDPOINT`: the provider's OpenID configuration,
    /// whose `jwks_uri` says where to fetch it.
    Discovery(KeyUrl),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Inline(_) => f.write_str("Inline(..)"),
            KeySource::Url(url) => f.debug_tuple("Url").field(&url.as_str()).finish(),
            KeySource::Discovery(url) => f.debug_tuple("Discovery").field(&url.as_str()).finish(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{0} must be an https:// URL (http:// only for a loopback host)")]
    BadUrl(&'static str),
    #[error("AUTH_AUDIENCE lists no audience")]
    NoAudience,
    #[error("{0} must be a positive whole number")]
    NotPositive(&'static str),
    #[error("{0} must be true or false")]
    NotBoolean(&'static str),
    #[error("AUTH_JWT_ALLOW_GROUPS needs AUTH_JWT_GROUPS_CLAIM, the claim that holds a token's groups")]
    GroupsWithoutClaim,
    #[error(
        "AUTH_JWT_ALLOW_GROUPS is set but names no group (only commas and spaces); unset it to turn the check off"
    )]
    NoGroups,
    #[error("AUTH_JWKS is not a usable key set: {0}")]
    BadJwks(String),
    #[error("the identity provider's HTTP client cannot be built (TLS roots: SSL_CERT_FILE, SSL_CERT_DIR): {0}")]
    HttpClient(String),
    #[error(
        "the DynamoDB endpoint {0:?} (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL or an AWS config file's \
         endpoint_url) must be https:// (http:// only to a loopback host): whatever answers as DynamoDB decides \
         who is authenticated"
    )]
    InsecureDynamoDbEndpoint(String),
}

impl ConfigError {
    /// One of each kind, for the documents (spec §6 lists them all).
    pub fn every() -> Vec<ConfigError> {
        let every = vec![
            ConfigError::Missing("TOKENS_TABLE"),
            ConfigError::BadUrl("AUTH_KEYS_LOCATION"),
            ConfigError::NoAudience,
            ConfigError::NotPositive("NB_API_RATE_LIMITING_RPM"),
            ConfigError::NotBoolean("NB_API_RATE_LIMITING_ENABLED"),
            ConfigError::GroupsWithoutClaim,
            ConfigError::NoGroups,
            ConfigError::BadJwks("no usable signing key".into()),
            ConfigError::HttpClient("no roots".into()),
            ConfigError::InsecureDynamoDbEndpoint("http://10.0.0.1".into()),
        ];
        // Exhaustive on purpose: a new kind stops this compiling until it
        // is listed above, and so in the spec.
        for error in &every {
            match error {
                ConfigError::Missing(_)
                | ConfigError::BadUrl(_)
                | ConfigError::NoAudience
                | ConfigError::NotPositive(_)
                | ConfigError::NotBoolean(_)
                | ConfigError::GroupsWithoutClaim
                | ConfigError::NoGroups
                | ConfigError::BadJwks(_)
                | ConfigError::HttpClient(_)
                | ConfigError::InsecureDynamoDbEndpoint(_) => {}
            }
        }
        every
    }
}

/// An identity provider's URL the function may fetch: `https://`, or plain
/// `http://` to a loopback host (local development), without credentials.
/// Only [`KeyUrl::parse`] makes one, so whatever fetches it need not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUrl {
    url: Url,
    /// As written in the setting (or the provider's document).
    text: String,
}

impl KeyUrl {
    pub fn parse(text: &str) -> Option<Self> {
        let url = web_url(text)?;
        (url.scheme() == "https" || is_loopback(&url)).then(|| KeyUrl { url, text: text.to_owned() })
    }

    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// On this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.url)
    }
}

/// An `http://` or `https://` URL to a loopback host (`localhost`,
/// 127.0.0.0/8, `[::1]`), without credentials: a service on this machine.
pub fn loopback_url(text: &str) -> Option<Url> {
    web_url(text).filter(is_loopback)
}

fn web_url(text: &str) -> Option<Url> {
    let url = Url::parse(text).ok()?;
    let plain = url.username().is_empty() && url.password().is_none();
    (plain && matches!(url.scheme(), "http" | "https")).then_some(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl Config {
    /// `lookup` returns a variable's value; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let require = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let list = |text: String| -> Vec<String> {
            text.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()
        };
        let audiences = list(require("AUTH_AUDIENCE")?);
        if audiences.is_empty() {
            return Err(ConfigError::NoAudience);
        }
        // Unset or empty: no check. Set, it must name a group: a list of
        // separators would otherwise turn the check off unnoticed.
        let allow_groups = lookup("AUTH_JWT_ALLOW_GROUPS").filter(|v| !v.is_empty()).map(list);
        let allowed_groups = match (get("AUTH_JWT_GROUPS_CLAIM"), allow_groups) {
            (_, None) => None,
            (_, Some(groups)) if groups.is_empty() => return Err(ConfigError::NoGroups),
            (None, Some(_)) => return Err(ConfigError::GroupsWithoutClaim),
            (Some(claim), Some(groups)) => Some(AllowedGroups { claim, groups }),
        };
        let positive = |name: &'static str, default: u32| -> Result<NonZeroU32, ConfigError> {
            let value = get(name).map_or(Some(default), |v| v.parse().ok());
            value.and_then(NonZeroU32::new).ok_or(ConfigError::NotPositive(name))
        };
        let rate_limit = RateLimit {
            per_minute: positive("NB_API_RATE_LIMITING_RPM", DEFAULT_RPM)?,
            burst: positive("NB_API_RATE_LIMITING_BURST", DEFAULT_BURST)?,
        };
        let rate_limit = match get("NB_API_RATE_LIMITING_ENABLED").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false") => None,
            Some("true") => Some(rate_limit),
            Some(_) => return Err(ConfigError::NotBoolean("NB_API_RATE_LIMITING_ENABLED")),
        };
        // The most direct source wins: the set itself, its URL, the provider's configuration.
        let url = |name| get(name).map(|text| KeyUrl::parse(&text).ok_or(ConfigError::BadUrl(name))).transpose();
        let keys = match (get("AUTH_JWKS"), url("AUTH_KEYS_LOCATION")?, url("AUTH_OIDC_CONFIG_ENDPOINT")?) {
            (Some(jwks), _, _) => KeySource::Inline(jwks),
            (None, Some(url), _) => KeySource::Url(url),
            (None, None, Some(url)) => KeySource::Discovery(url),
            (None, None, None) => {
                return Err(ConfigError::Missing("AUTH_JWKS, AUTH_KEYS_LOCATION or AUTH_OIDC_CONFIG_ENDPOINT"))
            }
        };
        Ok(Config {
            tokens_table: require("TOKENS_TABLE")?,
            users_table: require("USERS_TABLE")?,
            key_cache_table: get("KEY_CACHE_TABLE"),
            auth: AuthConfig {
                issuer: require("AUTH_ISSUER")?,
                audiences,
                keys,
                user_id_claim: get("AUTH_USER_ID_CLAIM").unwrap_or_else(|| DEFAULT_USER_ID_CLAIM.into()),
                allowed_groups,
            },
            rate_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const BASE: [(&str, &str); 5] = [
        ("TOKENS_TABLE", "tokens"),
        ("USERS_TABLE", "users"),
        ("AUTH_ISSUER", "https://idp.example/"),
        ("AUTH_AUDIENCE", "netbird, cli ,"),
        ("AUTH_KEYS_LOCATION", "https://idp.example/jwks.json"),
    ];
    const ENABLED: &str = "NB_API_RATE_LIMITING_ENABLED";
    const RPM: &str = "NB_API_RATE_LIMITING_RPM";
    const BURST: &str = "NB_API_RATE_LIMITING_BURST";
    const CLAIM: &str = "AUTH_JWT_GROUPS_CLAIM";
    const ALLOW: &str = "AUTH_JWT_ALLOW_GROUPS";

    /// The config of `BASE` without `unset`, `extra` added (and winning).
    fn config(unset: &str, extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<&str, &str> = BASE.iter().filter(|(k, _)| *k != unset).chain(extra).copied().collect();
        Config::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn reads_everything_with_defaults_and_the_most_direct_key_source() {
        let got = config("", &[]).unwrap();
        assert_eq!((got.tokens_table.as_str(), got.auth.user_id_claim.as_str()), ("tokens", "sub"));
        assert_eq!(got.auth.audiences, ["netbird", "cli"]);
        assert_eq!(got.auth.keys, KeySource::Url(KeyUrl::parse("https://idp.example/jwks.json").unwrap()));
        let jwks = r#"{"keys":[{"n":"SECRET-LOOKING"}]}"#;
        let got = config("", &[("AUTH_JWKS", jwks), ("AUTH_USER_ID_CLAIM", "email")]).unwrap();
        assert_eq!((&got.auth.keys, got.auth.user_id_claim.as_str()), (&KeySource::Inline(jwks.into()), "email"));
        assert!(!format!("{got:?}").contains("SECRET-LOOKING"), "inline keys are not debug printed");
        let discovery = "https://idp.example/.well-known/openid-configuration";
        let got = config("AUTH_KEYS_LOCATION", &[("AUTH_OIDC_CONFIG_ENDPOINT", discovery)]).unwrap();
        assert_eq!(got.auth.keys, KeySource::Discovery(KeyUrl::parse(discovery).unwrap()), "the last resort");
        let got = config("", &[("AUTH_OIDC_CONFIG_ENDPOINT", discovery)]).unwrap();
        assert!(matches!(got.auth.keys, KeySource::Url(_)), "the key set's URL before discovery");
    }

    #[test]
    fn each_required_setting_is_named_when_missing_and_bad_values_are_refused() {
        for name in ["TOKENS_TABLE", "USERS_TABLE", "AUTH_ISSUER", "AUTH_AUDIENCE"] {
            assert_eq!(config(name, &[]), Err(ConfigError::Missing(name)), "{name} unset");
            assert_eq!(config(name, &[(name, "  ")]), Err(ConfigError::Missing(name)), "{name} blank");
        }
        let no_keys = ConfigError::Missing("AUTH_JWKS, AUTH_KEYS_LOCATION or AUTH_OIDC_CONFIG_ENDPOINT");
        assert_eq!(config("AUTH_KEYS_LOCATION", &[]), Err(no_keys));
        assert_eq!(config("", &[("AUTH_AUDIENCE", " , ")]), Err(ConfigError::NoAudience));
        for (name, url) in [
            ("AUTH_KEYS_LOCATION", "file:///etc/passwd"),
            ("AUTH_KEYS_LOCATION", "http://idp.example/keys"),
            ("AUTH_OIDC_CONFIG_ENDPOINT", "http://idp.example/keys"),
        ] {
            assert_eq!(config("AUTH_KEYS_LOCATION", &[(name, url)]), Err(ConfigError::BadUrl(name)), "{name}={url}");
        }
    }

    #[test]
    fn keys_come_over_https_or_from_this_machine() {
        for (url, fetched) in [
            ("https://idp.example/jwks.json", true),
            ("http://127.0.0.1:8080/jwks", true),
            ("http://localhost/jwks", true),
            ("http://[::1]:9/jwks", true),
            ("http://idp.example/jwks.json", false),
            ("http://10.0.0.1/jwks", false),
            ("http://127.0.0.1.nip.io/jwks", false),
            ("ftp://idp.example/jwks", false),
            ("file:///etc/passwd", false),
            ("https://user:pass@idp.example/jwks", false),
            ("idp.example/jwks", false),
            ("", false),
        ] {
            assert_eq!(KeyUrl::parse(url).is_some(), fetched, "{url}");
        }
    }

    #[test]
    fn loopback_urls_name_this_machine_only() {
        for url in ["http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:8000", "https://127.9.9.9"] {
            assert!(loopback_url(url).is_some(), "{url}");
        }
        for url in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://10.0.0.1:8000",
            "http://127.0.0.1.evil.example:8000",
            "http://user@127.0.0.1:8000",
            "127.0.0.1:8000",
            "",
        ] {
            assert_eq!(loopback_url(url), None, "{url}");
        }
    }

    #[test]
    fn netbirds_rate_limit_settings() {
        let limit = |rpm, burst| {
            Ok(Some(RateLimit { per_minute: NonZeroU32::new(rpm).unwrap(), burst: NonZeroU32::new(burst).unwrap() }))
        };
        let not_positive = |name| Err(ConfigError::NotPositive(name));
        let cases: [(&[(&str, &str)], _); 11] = [
            (&[], Ok(None)),                       // off by default
            (&[(RPM, "60")], Ok(None)),            // off unless enabled
            (&[(ENABLED, "true")], limit(6, 500)), // NetBird's defaults
            (&[(ENABLED, "TRUE"), (RPM, "120"), (BURST, "10")], limit(120, 10)),
            (&[(ENABLED, "false")], Ok(None)),
            (&[(ENABLED, "yes")], Err(ConfigError::NotBoolean(ENABLED))),
            (&[(RPM, "0")], not_positive(RPM)),
            (&[(RPM, "-6")], not_positive(RPM)),
            (&[(RPM, "6.5")], not_positive(RPM)),
            (&[(BURST, "lots")], not_positive(BURST)),
            (&[(BURST, "99999999999")], not_positive(BURST)),
        ];
        for (extra, want) in cases {
            assert_eq!(config("", extra).map(|c| c.rate_limit), want, "{extra:?}");
        }
    }

    #[test]
    fn allowed_groups_need_their_claim() {
        let groups =
            Some(AllowedGroups { claim: "groups".into(), groups: vec!["netbird-admins".into(), "ops".into()] });
        let cases: [(&[(&str, &str)], _); 5] = [
            (&[], Ok(None)),
            (&[(CLAIM, "groups")], Ok(None)),              // no list, no check
            (&[(CLAIM, "groups"), (ALLOW, "")], Ok(None)), // empty, no check
            (&[(CLAIM, "groups"), (ALLOW, "netbird-admins, ops ,")], Ok(groups)),
            (&[(ALLOW, "ops")], Err(ConfigError::GroupsWithoutClaim)),
        ];
        for (extra, want) in cases {
            assert_eq!(config("", extra).map(|c| c.auth.allowed_groups), want, "{extra:?}");
        }
        for separators in [" , ", ",", "  ", ", ,\t"] {
            for extra in [&[(CLAIM, "groups"), (ALLOW, separators)][..], &[(ALLOW, separators)]] {
                assert_eq!(config("", extra).map(|c| c.auth.allowed_groups), Err(ConfigError::NoGroups), "{extra:?}");
            }
        }
    }
}
