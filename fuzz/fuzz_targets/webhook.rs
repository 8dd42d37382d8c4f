//! Any webhook body is either refused as malformed or read as a list of valid, distinct account
//! ids (and the entries that are not account ids): no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(notified) = markdrop::web::parse_notification(data) {
        let accounts = &notified.accounts;
        assert!(accounts.windows(2).all(|pair| pair[0] < pair[1]), "sorted, each once");
        for account in accounts {
            assert!(markdrop::dropbox::AccountId::parse(account.as_str()).is_ok());
        }
    }
});
