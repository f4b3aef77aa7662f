//! Why a credential was refused (spec §2, "Why a credential is refused"):
//! the `reason` of the request's log line, with the credential's public
//! values an operator compares with the settings. The caller only ever
//! learns `no valid authentication provided` or `token invalid`.

use serde_json::{json, Map, Value};

/// Every reason, in the order the function checks a credential: the
/// header, then a JWT's or a PAT's own checks. The first check that fails
/// is the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    HeaderAbsent,
    HeaderNotVisibleAscii,
    HeaderEmpty,
    UnknownScheme,
    HeaderTooLong,
    JwtMalformed,
    JwtAlgorithmNotAccepted,
    JwtUnknownKid,
    JwtNoKeyForAlgorithm,
    JwtBadSignature,
    JwtNoExpiry,
    JwtExpired,
    JwtNotYetValid,
    JwtWrongIssuer,
    JwtWrongAudience,
    JwtNoUserId,
    JwtInvalidUserId,
    JwtNoGroups,
    JwtNoAllowedGroup,
    PatMalformed,
    PatBadChecksum,
    PatUnknown,
    PatExpired,
    PatDeleted,
}

impl Reason {
    pub const ALL: [Reason; 24] = [
        Reason::HeaderAbsent,
        Reason::HeaderNotVisibleAscii,
        Reason::HeaderEmpty,
        Reason::UnknownScheme,
        Reason::HeaderTooLong,
        Reason::JwtMalformed,
        Reason::JwtAlgorithmNotAccepted,
        Reason::JwtUnknownKid,
        Reason::JwtNoKeyForAlgorithm,
        Reason::JwtBadSignature,
        Reason::JwtNoExpiry,
        Reason::JwtExpired,
        Reason::JwtNotYetValid,
        Reason::JwtWrongIssuer,
        Reason::JwtWrongAudience,
        Reason::JwtNoUserId,
        Reason::JwtInvalidUserId,
        Reason::JwtNoGroups,
        Reason::JwtNoAllowedGroup,
        Reason::PatMalformed,
        Reason::PatBadChecksum,
        Reason::PatUnknown,
        Reason::PatExpired,
        Reason::PatDeleted,
    ];

    /// The `reason` field of the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::HeaderAbsent => "header_absent",
            Reason::HeaderEmpty => "header_empty",
            Reason::UnknownScheme => "unknown_scheme",
            Reason::HeaderNotVisibleAscii => "header_not_visible_ascii",
            Reason::HeaderTooLong => "header_too_long",
            Reason::JwtMalformed => "jwt_malformed",
            Reason::JwtAlgorithmNotAccepted => "jwt_algorithm_not_accepted",
            Reason::JwtUnknownKid => "jwt_unknown_kid",
            Reason::JwtNoKeyForAlgorithm => "jwt_no_key_for_algorithm",
            Reason::JwtBadSignature => "jwt_bad_signature",
            Reason::JwtNoExpiry => "jwt_no_expiry",
            Reason::JwtExpired => "jwt_expired",
            Reason::JwtNotYetValid => "jwt_not_yet_valid",
            Reason::JwtWrongIssuer => "jwt_wrong_issuer",
            Reason::JwtWrongAudience => "jwt_wrong_audience",
            Reason::JwtNoUserId => "jwt_no_user_id",
            Reason::JwtInvalidUserId => "jwt_invalid_user_id",
            Reason::JwtNoGroups => "jwt_no_groups",
            Reason::JwtNoAllowedGroup => "jwt_no_allowed_group",
            Reason::PatMalformed => "pat_malformed",
            Reason::PatBadChecksum => "pat_bad_checksum",
            Reason::PatUnknown => "pat_unknown",
            Reason::PatExpired => "pat_expired",
            Reason::PatDeleted => "pat_deleted",
        }
    }

    /// No credential at all: `401 no valid authentication provided`;
    /// every other reason is `401 token invalid`.
    pub fn is_missing_credential(self) -> bool {
        matches!(self, Reason::HeaderAbsent | Reason::HeaderEmpty | Reason::UnknownScheme)
    }
}

/// A string value shown is cut to this many characters, a list to this
/// many members: a hostile claim leaves one bounded line.
pub const MAX_CHARS: usize = 80;
pub const MAX_MEMBERS: usize = 5;

/// The credential's public values the log may show beside a reason: a
/// JWT's `alg`, `kid`, `iss`, `aud`, how long ago it expired, the claim
/// found missing or unusable, the groups it names; a PAT's token id. Never
/// a token, a signature, a hash or another claim. Before the signature is
/// checked, a JWT's values are only what the token says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub aud: Vec<String>,
    pub expired_seconds_ago: Option<u64>,
    pub claim: Option<String>,
    pub groups: Vec<String>,
    pub token_id: Option<String>,
}

impl Shown {
    /// The values as the log line's `credential` object: bounded, and
    /// without control or format characters (JSON escapes the rest).
    pub fn to_json(&self) -> Value {
        let mut shown = Map::new();
        let texts = [("alg", &self.alg), ("kid", &self.kid), ("iss", &self.iss), ("claim", &self.claim)];
        for (name, value) in texts {
            if let Some(value) = value {
                shown.insert(name.into(), bounded(value).into());
            }
        }
        for (name, values) in [("aud", &self.aud), ("groups", &self.groups)] {
            if !values.is_empty() {
                let listed: Vec<String> = values.iter().take(MAX_MEMBERS).map(|v| bounded(v)).collect();
                shown.insert(name.into(), json!(listed));
                if values.len() > MAX_MEMBERS {
                    shown.insert(format!("{name}_count"), values.len().into());
                }
            }
        }
        if let Some(ago) = self.expired_seconds_ago {
            shown.insert("expired_seconds_ago".into(), ago.into());
        }
        if let Some(token_id) = &self.token_id {
            shown.insert("token_id".into(), bounded(token_id).into());
        }
        Value::Object(shown)
    }
}

/// At most [`MAX_CHARS`] characters, control and format characters (a
/// newline, U+202E) replaced, `…` where cut.
fn bounded(text: &str) -> String {
    let visible = |c: char| if crate::ids::is_invisible(c) { '\u{FFFD}' } else { c };
    let mut out: String = text.chars().take(MAX_CHARS).map(visible).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A refused credential: why, and what the log may show of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: Reason,
    pub shown: Box<Shown>,
}

impl From<Reason> for Refused {
    fn from(reason: Reason) -> Self {
        Refused::new(reason, Shown::default())
    }
}

impl Refused {
    pub fn new(reason: Reason, shown: Shown) -> Self {
        Refused { reason, shown: Box::new(shown) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_once_in_order_and_no_two_read_alike() {
        let names: std::collections::BTreeSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
        // `ALL` is the declaration's order, to its last variant: none left out.
        assert!(Reason::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert_eq!(Reason::ALL.len(), Reason::PatDeleted as usize + 1);
    }

    #[test]
    fn hostile_values_stay_one_bounded_line() {
        let forged = format!("x\n{{\"level\":\"INFO\",\"message\":\"request\"}}\u{202E}{}", "a".repeat(5000));
        let shown = Shown { iss: Some(forged.clone()), aud: vec![forged; 40], ..Shown::default() };
        let line = shown.to_json().to_string();
        assert!(!line.contains('\n') && !line.contains('\u{202E}'), "{line}");
        assert!(line.len() < 1200, "{} bytes", line.len());
        assert_eq!(shown.to_json()["aud_count"], 40);
    }
}
