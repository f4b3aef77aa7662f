//! User, token and account ids (spec §1), each its own type so that one
//! can never be passed where another is expected.

use std::fmt;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Longest id accepted from a request, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// A control or format character (Unicode category Cf: bidirectional
/// overrides such as U+202E, zero-width spaces): text holding one may read
/// as other text in a log or an audit line.
pub fn is_invisible(c: char) -> bool {
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// 1 to 256 bytes, no `/`, nothing [invisible](is_invisible).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && !id.chars().any(|c| c == '/' || is_invisible(c))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// An id from a request or a token: `None` unless [`is_valid_id`].
            pub fn parse(id: &str) -> Option<Self> {
                is_valid_id(id).then(|| Self(id.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// A stored id, taken as the table holds it.
        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A NetBird user id: an xid, or an identity provider's subject.
    UserId
);
id_type!(
    /// A personal access token's id (not the token itself).
    TokenId
);
id_type!(
    /// A NetBird account id.
    AccountId
);

/// The ids a request names, decoded but not yet validated: validation
/// comes after authentication, as NetBird orders it. `None` means the bytes
/// were not UTF-8 after decoding.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    user_id: Option<String>,
    token_id: Option<String>,
}

/// Which of a [`Target`]'s ids is invalid (the user's is checked first).
#[derive(Debug, PartialEq, Eq)]
pub enum IdError {
    User,
    Token,
}

impl Target {
    pub fn new(user_id: Option<String>, token_id: Option<String>) -> Self {
        Target { user_id, token_id }
    }

    pub fn validated(self) -> Result<(UserId, TokenId), IdError> {
        let user_id = self.user_id.as_deref().and_then(UserId::parse).ok_or(IdError::User)?;
        let token_id = self.token_id.as_deref().and_then(TokenId::parse).ok_or(IdError::Token)?;
        Ok((user_id, token_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_ids() {
        assert!(is_valid_id("ch8i4ug6lnn4g9hqv7m0"));
        assert!(is_valid_id("google-oauth2|110539841234567890123"));
        assert!(is_valid_id("ünïcödé@example.com"));
        assert!(is_valid_id(&"a".repeat(MAX_ID_LEN)));
        assert_eq!(UserId::parse("u-1").map(|id| id.to_string()), Some("u-1".to_owned()));
    }

    #[test]
    fn refuses_bad_ids() {
        assert!(!is_valid_id(""));
        assert!(!is_valid_id(&"a".repeat(MAX_ID_LEN + 1)));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("a\nb"));
        assert!(!is_valid_id("a\u{0}b"));
        assert!(!is_valid_id("a\u{7f}b"));
        assert!(!is_valid_id("a\u{85}b"));
        for format in ['\u{202E}', '\u{200B}', '\u{200E}', '\u{2066}', '\u{FEFF}', '\u{AD}', '\u{E0041}'] {
            assert!(!is_valid_id(&format!("tok{format}en")), "{format:?}");
        }
        assert_eq!(TokenId::parse("a/b"), None);
    }
}
