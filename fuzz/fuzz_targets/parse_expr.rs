//! The expression parser: any text parses or is rejected with an offset inside the text; what
//! parses prints back to text that parses to the same print.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match tokencge::expr::parse(text) {
        Ok(syntax) => {
            let printed = tokencge::expr::print(&syntax);
            // Printing adds parentheses, which may pass the depth limit; otherwise it must
            // read back to the same expression.
            if let Ok(again) = tokencge::expr::parse(&printed) {
                assert_eq!(tokencge::expr::print(&again), printed);
            }
        }
        Err(e) => assert!(e.offset <= text.len()),
    }
});
