//! The SAM reader: any text is a SAM (then checked for balance) or an error naming the place.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sam) = tokencge::sam::Sam::from_str(text, "fuzz.csv") {
        let _ = sam.check_balanced(1e-9);
        for i in 0..sam.n_accounts() {
            assert!(sam.value(i, i).is_finite());
        }
    }
});
