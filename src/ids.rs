//! What counts as a user or token id (contract §1).

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// 1 to 256 bytes, no control characters, no `/`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && !id.chars().any(|c| c.is_control() || c == '/')
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
    }
}
