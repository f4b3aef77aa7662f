//! The `Authorization` header: `<scheme> <credential>` (spec §2).

use lambda_http::http::HeaderValue;

use crate::auth::pat::{Pat, PREFIX};
use crate::auth::reason::{Reason, Refused};

/// Longer credentials are refused before any parsing. API Gateway caps a
/// header at 10 KiB; real JWTs are a few KiB at most.
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

pub enum Credential<'a> {
    Jwt(&'a str),
    Pat(Pat<'a>),
}

/// The credential in `header` (`None`: the request has none), or why
/// there is none usable. A value that is not visible ASCII cannot hold a
/// valid credential.
pub fn parse(header: Option<&HeaderValue>) -> Result<Credential<'_>, Refused> {
    let value = header.ok_or(Reason::HeaderAbsent)?.to_str().map_err(|_| Reason::HeaderNotVisibleAscii)?.trim();
    if value.is_empty() {
        return Err(Reason::HeaderEmpty.into());
    }
    // One word is a scheme with nothing after it, or a credential without
    // a scheme (nothing of which is ever shown).
    let (scheme, credential) = value.split_once(' ').map_or((value, ""), |(s, c)| (s, c.trim_start()));
    let is_pat = if scheme.eq_ignore_ascii_case("token") {
        true
    } else if scheme.eq_ignore_ascii_case("bearer") {
        credential.starts_with(PREFIX)
    } else {
        return Err(Reason::UnknownScheme.into());
    };
    if credential.is_empty() {
        return Err(Reason::HeaderEmpty.into());
    }
    if credential.len() > MAX_CREDENTIAL_LEN {
        return Err(Reason::HeaderTooLong.into());
    }
    if is_pat {
        Pat::parse(credential).map(Credential::Pat).map_err(Refused::from)
    } else {
        Ok(Credential::Jwt(credential))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::pat::from_secret;

    fn kind(header: Option<&str>) -> Result<&'static str, Reason> {
        let value = header.map(|h| HeaderValue::from_str(h).unwrap());
        parse(value.as_ref())
            .map(|c| match c {
                Credential::Jwt(_) => "jwt",
                Credential::Pat(_) => "pat",
            })
            .map_err(|refused| refused.reason)
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
    fn each_header_refusal_names_its_reason() {
        let cases = [
            (None, Reason::HeaderAbsent),
            (Some(""), Reason::HeaderEmpty),
            (Some("   "), Reason::HeaderEmpty),
            (Some("Bearer"), Reason::HeaderEmpty),
            (Some("Bearer "), Reason::HeaderEmpty),
            (Some("Basic dXNlcjpw"), Reason::UnknownScheme),
            (Some("Bearerx a.b.c"), Reason::UnknownScheme),
            (Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), Reason::UnknownScheme),
            (Some("Token nbp_short"), Reason::PatMalformed),
            (Some("Token a.b.c"), Reason::PatMalformed),
            (Some("Bearer nbp_abcdefghijklmnopqrstuvwxyz0123000000"), Reason::PatBadChecksum),
        ];
        for (header, reason) in cases {
            assert_eq!(kind(header), Err(reason), "{header:?}");
        }
        let huge = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_LEN + 1));
        assert_eq!(kind(Some(&huge)), Err(Reason::HeaderTooLong));
        let not_ascii = HeaderValue::from_bytes(b"Bearer \xff.a.b").unwrap();
        assert_eq!(parse(Some(&not_ascii)).err().map(|r| r.reason), Some(Reason::HeaderNotVisibleAscii));
    }
}
