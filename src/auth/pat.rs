//! NetBird personal access tokens: `nbp_` + 30 base62 secret + 6 base62
//! digits of `crc32(secret)` (spec §2). Everything here runs before any
//! database call, so a malformed token costs nothing but CPU.

use base64::{engine::general_purpose::STANDARD, Engine};

use crate::auth::reason::Reason;

pub const PREFIX: &str = "nbp_";
const SECRET_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
pub const TOKEN_LEN: usize = PREFIX.len() + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A token whose format and checksum are right. Deliberately not `Debug`
/// or `Display`: it must never reach a log line.
pub struct Pat<'a>(&'a str);

impl<'a> Pat<'a> {
    /// A well-formed token with a matching checksum, or which of the two
    /// it is not.
    pub fn parse(token: &'a str) -> Result<Self, Reason> {
        // ASCII first: the slices below are by byte.
        if token.len() != TOKEN_LEN || !token.is_ascii() || !token.starts_with(PREFIX) {
            return Err(Reason::PatMalformed);
        }
        let secret = &token[PREFIX.len()..PREFIX.len() + SECRET_LEN];
        let checksum = &token[PREFIX.len() + SECRET_LEN..];
        if !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Reason::PatMalformed);
        }
        let Some(checksum) = decode_base62(checksum) else { return Err(Reason::PatMalformed) };
        if checksum != u64::from(crc32fast::hash(secret.as_bytes())) {
            return Err(Reason::PatBadChecksum);
        }
        Ok(Pat(token))
    }

    /// `base64_std(sha256(token))`: the `hashedToken` attribute.
    pub fn hash(&self) -> String {
        hash_token(self.0)
    }
}

pub fn hash_token(token: &str) -> String {
    STANDARD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()))
}

/// Builds a token from a 30-character base62 secret (the dev tools use it).
pub fn from_secret(secret: &str) -> Option<String> {
    if secret.len() != SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let checksum = encode_base62(u64::from(crc32fast::hash(secret.as_bytes())));
    Some(format!("{PREFIX}{secret}{checksum:0>width$}", width = CHECKSUM_LEN))
}

/// A fresh token from the system's secure random source.
pub fn generate() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = [0u8; SECRET_LEN];
    aws_lc_rs::rand::fill(&mut bytes)?;
    // 62 * 4 = 248 of 256 values map evenly; the slight bias of the other 8 is
    // acceptable for a 178-bit secret, and NetBird draws the same way.
    let secret: String = bytes.iter().map(|b| BASE62[usize::from(*b) % 62] as char).collect();
    from_secret(&secret).ok_or(aws_lc_rs::error::Unspecified)
}

fn encode_base62(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().map(|&d| d as char).collect()
}

fn decode_base62(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, b| {
        let digit = BASE62.iter().position(|&d| d == b)?;
        acc.checked_mul(62)?.checked_add(digit as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "abcdefghijklmnopqrstuvwxyz0123";

    #[test]
    fn checksum_is_base62_crc32_left_padded() {
        let token = from_secret(SECRET).unwrap();
        assert_eq!(token.len(), TOKEN_LEN);
        let crc = crc32fast::hash(SECRET.as_bytes());
        assert_eq!(decode_base62(&token[34..]), Some(u64::from(crc)));
        assert!(Pat::parse(&token).is_ok());
    }

    #[test]
    fn small_checksums_are_zero_padded() {
        assert_eq!(encode_base62(0), "0");
        assert_eq!(encode_base62(61), "z");
        assert_eq!(encode_base62(62), "10");
        assert_eq!(format!("{:0>6}", encode_base62(62)), "000010");
        assert_eq!(decode_base62("000010"), Some(62));
    }

    #[test]
    fn matches_an_independent_implementation() {
        // Computed with Python's zlib.crc32 and hashlib, as NetBird's Go
        // `generateNewToken` does it.
        let token = from_secret(SECRET).unwrap();
        assert_eq!(token, "nbp_abcdefghijklmnopqrstuvwxyz01232LolCm");
        assert_eq!(hash_token(&token), "89uDSKaqxfZQMJlbQrA2J63a3pfp8TlAzFbobDygwZY=");
    }

    #[test]
    fn rejects_every_malformed_token() {
        let good = from_secret(SECRET).unwrap();
        let mut wrong_checksum = good.clone();
        wrong_checksum.replace_range(39.., if good.ends_with('0') { "1" } else { "0" });
        for malformed in [
            "",
            "nbp_",
            &good[..39],
            &format!("{good}0"),
            &good.replacen("nbp_", "nbx_", 1),
            &good.replacen('a', "-", 1),
            "nbp_abcdefghijklmnopqrstuvwxyzé12345",
            "nbp_abcdefghijklmnopqrstuvwxyz0123-12345",
        ] {
            assert_eq!(Pat::parse(malformed).err(), Some(Reason::PatMalformed), "{malformed}");
        }
        for bad_checksum in [&wrong_checksum[..], "nbp_abcdefghijklmnopqrstuvwxyz0123zzzzzz"] {
            assert_eq!(Pat::parse(bad_checksum).err(), Some(Reason::PatBadChecksum), "{bad_checksum}");
        }
    }

    #[test]
    fn multibyte_characters_are_refused_not_sliced() {
        // Found by the authorization_header fuzz target: 40 bytes, but a
        // character straddles the secret's end.
        let token = format!("nbp_{}é{}", "a".repeat(29), "0".repeat(5));
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(Pat::parse(&token).err(), Some(Reason::PatMalformed));
        assert_eq!(Pat::parse("nbp_ééééééééééééééééé0").err(), Some(Reason::PatMalformed));
    }

    #[test]
    fn checksum_overflow_is_rejected_not_wrapped() {
        assert_eq!(decode_base62("zzzzzzzzzzzz"), None);
    }

    #[test]
    fn hash_is_base64_sha256_of_whole_token() {
        // sha256("abc"), base64 (RFC 6234 test vector).
        assert_eq!(hash_token("abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        assert_eq!(hash_token(&from_secret(SECRET).unwrap()).len(), 44);
    }

    #[test]
    fn generated_tokens_parse() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(Pat::parse(&a).is_ok() && Pat::parse(&b).is_ok());
    }
}
