//! Any `Authorization` header value: parsed without panicking; a PAT is
//! only ever accepted in its exact 40-character form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netbird_delete_token::credential::{parse, Credential, MAX_CREDENTIAL_LEN};

fuzz_target!(|data: &[u8]| {
    let header = std::str::from_utf8(data).map_err(|_| ());
    match parse(Some(header)) {
        Ok(Credential::Pat(pat)) => assert_eq!(pat.hash().len(), 44),
        Ok(Credential::Jwt(jwt)) => assert!(!jwt.is_empty() && jwt.len() <= MAX_CREDENTIAL_LEN),
        Err(_) => {}
    }
});
