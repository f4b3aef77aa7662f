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

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    const BASE: [(&str, &str); 5] = [
        ("TOKENS_TABLE", "tokens"),
        ("USERS_TABLE", "users"),
        ("AUTH_ISSUER", "https://idp.example/"),
        ("AUTH_AUDIENCE", "netbird, cli ,"),
        ("AUTH_KEYS_LOCATION", "https://idp.example/jwks.json"),
    ];

    #[test]
    fn reads_everything_with_defaults() {
        let got = config(&BASE).unwrap();
        assert_eq!(got.tokens_table, "tokens");
        assert_eq!(got.auth.audiences, vec!["netbird", "cli"]);
        assert_eq!(got.auth.user_id_claim, "sub");
        assert_eq!(got.auth.keys, KeySource::Url(KeyUrl::parse("https://idp.example/jwks.json").unwrap()));
    }

    #[test]
    fn inline_jwks_wins_and_is_not_debug_printed() {
        let mut vars = BASE.to_vec();
        vars.push(("AUTH_JWKS", r#"{"keys":[{"n":"SECRET-LOOKING"}]}"#));
        vars.push(("AUTH_USER_ID_CLAIM", "email"));
        let got = config(&vars).unwrap();
        assert_eq!(got.auth.keys, KeySource::Inline(r#"{"keys":[{"n":"SECRET-LOOKING"}]}"#.into()));
        assert_eq!(got.auth.user_id_claim, "email");
        assert!(!format!("{got:?}").contains("SECRET-LOOKING"));
    }

    #[test]
    fn each_required_setting_is_named_when_missing() {
        for name in ["TOKENS_TABLE", "USERS_TABLE", "AUTH_ISSUER", "AUTH_AUDIENCE"] {
            let vars: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != name).collect();
            assert_eq!(config(&vars), Err(ConfigError::Missing(name)));
            let mut blank = vars.clone();
            blank.push((name, "  "));
            assert_eq!(config(&blank), Err(ConfigError::Missing(name)));
        }
        let no_keys: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != "AUTH_KEYS_LOCATION").collect();
        assert_eq!(
            config(&no_keys),
            Err(ConfigError::Missing("AUTH_JWKS, AUTH_KEYS_LOCATION or AUTH_OIDC_CONFIG_ENDPOINT"))
        );
    }

    #[test]
    fn discovery_is_the_last_resort() {
        let mut vars: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != "AUTH_KEYS_LOCATION").collect();
        vars.push(("AUTH_OIDC_CONFIG_ENDPOINT", "https://idp.example/.well-known/openid-configuration"));
        let want = KeyUrl::parse("https://idp.example/.well-known/openid-configuration").unwrap();
        assert_eq!(config(&vars).unwrap().auth.keys, KeySource::Discovery(want));
        vars.push(("AUTH_KEYS_LOCATION", "https://idp.example/jwks.json"));
        assert!(matches!(config(&vars).unwrap().auth.keys, KeySource::Url(_)));
    }

    #[test]
    fn keys_come_over_https_or_from_this_machine() {
        for good in [
            "https://idp.example/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/jwks",
        ] {
            assert!(KeyUrl::parse(good).is_some(), "{good}");
        }
        for bad in [
            "http://idp.example/jwks.json",
            "http://10.0.0.1/jwks",
            "http://127.0.0.1.nip.io/jwks",
            "ftp://idp.example/jwks",
            "file:///etc/passwd",
            "https://user:pass@idp.example/jwks",
            "idp.example/jwks",
            "",
        ] {
            assert_eq!(KeyUrl::parse(bad), None, "{bad}");
        }
        for name in ["AUTH_KEYS_LOCATION", "AUTH_OIDC_CONFIG_ENDPOINT"] {
            let mut vars: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != "AUTH_KEYS_LOCATION").collect();
            vars.push((name, "http://idp.example/keys"));
            assert_eq!(config(&vars), Err(ConfigError::BadUrl(name)));
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
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = BASE.to_vec();
            vars.extend_from_slice(extra);
            config(&vars).map(|c| c.rate_limit)
        };
        assert_eq!(with(&[]), Ok(None), "off by default");
        assert_eq!(with(&[("NB_API_RATE_LIMITING_RPM", "60")]), Ok(None), "off unless enabled");
        let limit = |per_minute, burst| RateLimit {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        };
        let on = limit(6, 500);
        assert_eq!(with(&[("NB_API_RATE_LIMITING_ENABLED", "true")]), Ok(Some(on)), "NetBird's defaults");
        assert_eq!(
            with(&[
                ("NB_API_RATE_LIMITING_ENABLED", "TRUE"),
                ("NB_API_RATE_LIMITING_RPM", "120"),
                ("NB_API_RATE_LIMITING_BURST", "10")
            ]),
            Ok(Some(limit(120, 10)))
        );
        assert_eq!(with(&[("NB_API_RATE_LIMITING_ENABLED", "false")]), Ok(None));
        for (name, value) in [
            ("NB_API_RATE_LIMITING_RPM", "0"),
            ("NB_API_RATE_LIMITING_RPM", "-6"),
            ("NB_API_RATE_LIMITING_RPM", "6.5"),
            ("NB_API_RATE_LIMITING_BURST", "lots"),
            ("NB_API_RATE_LIMITING_BURST", "99999999999"),
        ] {
            assert_eq!(with(&[(name, value)]), Err(ConfigError::NotPositive(name)), "{name}={value}");
        }
        assert_eq!(
            with(&[("NB_API_RATE_LIMITING_ENABLED", "yes")]),
            Err(ConfigError::NotBoolean("NB_API_RATE_LIMITING_ENABLED"))
        );
    }

    #[test]
    fn allowed_groups_need_their_claim() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = BASE.to_vec();
            vars.extend_from_slice(extra);
            config(&vars).map(|c| c.auth.allowed_groups)
        };
        assert_eq!(with(&[]), Ok(None));
        assert_eq!(with(&[("AUTH_JWT_GROUPS_CLAIM", "groups")]), Ok(None), "no list, no check");
        assert_eq!(
            with(&[("AUTH_JWT_GROUPS_CLAIM", "groups"), ("AUTH_JWT_ALLOW_GROUPS", "")]),
            Ok(None),
            "empty, no check"
        );
        for separators in [" , ", ",", "  ", ", ,\t"] {
            let no_groups = Err(ConfigError::NoGroups);
            assert_eq!(with(&[("AUTH_JWT_GROUPS_CLAIM", "groups"), ("AUTH_JWT_ALLOW_GROUPS", separators)]), no_groups);
            assert_eq!(with(&[("AUTH_JWT_ALLOW_GROUPS", separators)]), Err(ConfigError::NoGroups), "{separators:?}");
        }
        assert_eq!(
            with(&[("AUTH_JWT_GROUPS_CLAIM", "groups"), ("AUTH_JWT_ALLOW_GROUPS", "netbird-admins, ops ,")]),
            Ok(Some(AllowedGroups { claim: "groups".into(), groups: vec!["netbird-admins".into(), "ops".into()] }))
        );
        assert_eq!(with(&[("AUTH_JWT_ALLOW_GROUPS", "ops")]), Err(ConfigError::GroupsWithoutClaim));
    }

    #[test]
    fn bad_values_are_refused() {
        let mut vars = BASE.to_vec();
        vars[4] = ("AUTH_KEYS_LOCATION", "file:///etc/passwd");
        assert_eq!(config(&vars), Err(ConfigError::BadUrl("AUTH_KEYS_LOCATION")));
        let mut vars = BASE.to_vec();
        vars[3] = ("AUTH_AUDIENCE", " , ");
        assert_eq!(config(&vars), Err(ConfigError::NoAudience));
    }
}
