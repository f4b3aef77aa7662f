//! Settings from the environment (contract §6), validated once at init.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tokens_table: String,
    pub users_table: String,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub user_id_claim: String,
}

#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `AUTH_JWKS`: the key set itself.
    Inline(String),
    /// `AUTH_KEYS_LOCATION`: where to fetch it.
    Url(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Inline(_) => f.write_str("Inline(..)"),
            KeySource::Url(url) => f.debug_tuple("Url").field(url).finish(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{0} must be an http:// or https:// URL")]
    BadUrl(&'static str),
    #[error("AUTH_AUDIENCE lists no audience")]
    NoAudience,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// `lookup` returns a variable's value; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let require = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let audiences: Vec<String> =
            require("AUTH_AUDIENCE")?.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
        if audiences.is_empty() {
            return Err(ConfigError::NoAudience);
        }
        let keys = match (get("AUTH_JWKS"), get("AUTH_KEYS_LOCATION")) {
            (Some(jwks), _) => KeySource::Inline(jwks),
            (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => KeySource::Url(url),
            (None, Some(_)) => return Err(ConfigError::BadUrl("AUTH_KEYS_LOCATION")),
            (None, None) => return Err(ConfigError::Missing("AUTH_JWKS or AUTH_KEYS_LOCATION")),
        };
        Ok(Config {
            tokens_table: require("TOKENS_TABLE")?,
            users_table: require("USERS_TABLE")?,
            auth: AuthConfig {
                issuer: require("AUTH_ISSUER")?,
                audiences,
                keys,
                user_id_claim: get("AUTH_USER_ID_CLAIM").unwrap_or_else(|| "sub".into()),
            },
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
        assert_eq!(got.auth.keys, KeySource::Url("https://idp.example/jwks.json".into()));
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
        assert_eq!(config(&no_keys), Err(ConfigError::Missing("AUTH_JWKS or AUTH_KEYS_LOCATION")));
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
