//! PAT parsing and checksums: never a panic; whatever is accepted is
//! 40 characters with `nbp_`; any 30 base62 characters make a valid token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netbird_delete_token::pat::{from_secret, Pat, PREFIX, TOKEN_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if Pat::parse(text).is_some() {
        assert!(text.len() == TOKEN_LEN && text.starts_with(PREFIX));
    }
    if let Some(token) = from_secret(text) {
        assert!(Pat::parse(&token).is_some(), "a token made from a secret parses");
    }
});
