//! The `Authorization` header: `<scheme> <credential>` (contract §2).

use crate::pat::{Pat, PREFIX};

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

/// `header` is `None` when absent; `Some(Err(()))` when not visible ASCII.
pub fn parse(header: Option<Result<&str, ()>>) -> Result<Credential<'_>, CredentialError> {
    let value = match header {
        None => return Err(CredentialError::Missing),
        Some(Err(())) => return Err(CredentialError::Invalid),
        Some(Ok(value)) => value.trim(),
    };
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
    use crate::pat::from_secret;

    fn kind(header: Option<&str>) -> Result<&'static str, CredentialError> {
        parse(header.map(Ok)).map(|c| match c {
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
        assert_eq!(parse(Some(Err(()))).err(), Some(CredentialError::Invalid));
    }
}
