//! The `Authorization` header: `<scheme> <credential>` (spec §2).

use lambda_http::http::HeaderValue;

use crate::auth::pat::{Pat, PREFIX};

/// Longer credentials are refused before any parsing. API Gateway caps a
/// header at 10 KiB; real JWTs are a few KiB at most.
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

pub enum Credential<'a> {
    Jwt(&'a str),
    Pat(Pat<'a>),
}

#[derive(Debug, PartialEq, Eq)]
pub enum CredentialError {
    /// No header, an empty one, or an unknown scheme.
    Missing,
    /// A known scheme whose credential cannot be valid.
    Invalid,
}

/// The credential in `header` (`None`: the request has none). A value
/// that is not visible ASCII cannot hold a valid credential.
pub fn parse(header: Option<&HeaderValue>) -> Result<Credential<'_>, CredentialError> {
    let value = header.ok_or(CredentialError::Missing)?.to_str().map_err(|_| CredentialError::Invalid)?.trim();
    let (scheme, credential) = value.split_once(' ').ok_or(CredentialError::Missing)?;
    let credential = credential.trim_start();
    if credential.is_empty() {
        return Err(CredentialError::Missing);
    }
    let is_pat = if scheme.eq_ignore_ascii_case("token") {
        true
    } else if scheme.eq_ignore_ascii_case("bearer") {
        credential.starts_with(PREFIX)
    } else {
        return Err(CredentialError::Missing);
    };
    if credential.len() > MAX_CREDENTIAL_LEN {
        return Err(CredentialError::Invalid);
    }
    if is_pat {
        Pat::parse(credential).map(Credential::Pat).ok_or(CredentialError::Invalid)
    } else {
        Ok(Credential::Jwt(credential))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::pat::from_secret;

    fn kind(header: Option<&str>) -> Result<&'static str, CredentialError> {
        let value = header.map(|h| HeaderValue::from_str(h).unwrap());
        parse(value.as_ref()).map(|c| match c {
            Credential::Jwt(_) => "jwt",
            Credential::Pat(_) => "pat",
        })
    }

    #[test]
    fn schemes_are_case_insensitive() {
        let pat = from_secret("abcdefghijklmnopqrstuvwxyz0123").unwrap();
        assert_eq!(kind(Some(&format!("Token {pat}"))), Ok("pat"));
        assert_eq!(kind(Some(&format!("tOKEN {pat}"))), Ok("pat"));
        assert_eq!(kind(Some(&format!("Bearer {pat}"))), Ok("pat"));
        assert_eq!(kind(Some(&format!("bearer {pat}"))), Ok("pat"));
        assert_eq!(kind(Some("BEARER a.b.c")), Ok("jwt"));
    }

    #[test]
    fn missing_empty_or_unknown_scheme() {
        for header in [
            None,
            Some(""),
            Some("   "),
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic dXNlcjpw"),
            Some("Bearerx a.b.c"),
        ] {
            assert_eq!(kind(header), Err(CredentialError::Missing), "{header:?}");
        }
    }

    #[test]
    fn malformed_credentials_are_invalid() {
        assert_eq!(kind(Some("Token nbp_short")), Err(CredentialError::Invalid));
        assert_eq!(kind(Some("Token a.b.c")), Err(CredentialError::Invalid));
        assert_eq!(kind(Some("Bearer nbp_abcdefghijklmnopqrstuvwxyz0123000000")), Err(CredentialError::Invalid));
        let huge = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_LEN + 1));
        assert_eq!(kind(Some(&huge)), Err(CredentialError::Invalid));
        let not_ascii = HeaderValue::from_bytes(b"Bearer \xff.a.b").unwrap();
        assert_eq!(parse(Some(&not_ascii)).err(), Some(CredentialError::Invalid));
    }
}
