//! Any method and raw path: routing never panics, and ids that pass
//! validation are always valid ids.
#![no_main]

use lambda_http::http::Method;
use libfuzzer_sys::fuzz_target;
use netbird_delete_token::ids::is_valid_id;
use netbird_delete_token::route::{route, Route};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(path) = std::str::from_utf8(rest) else { return };
    let method = [Method::DELETE, Method::GET, Method::OPTIONS, Method::POST][usize::from(selector % 4)].clone();
    let params = (selector & 0x80 != 0).then(|| path.split_once('\u{0}')).flatten();
    if let Ok(Route::Delete(target)) = route(&method, path, params) {
        assert_eq!(method, Method::DELETE);
        if let Ok((user_id, token_id)) = target.validated() {
            assert!(is_valid_id(&user_id) && is_valid_id(&token_id));
        }
    }
});
