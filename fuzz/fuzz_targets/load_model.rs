//! The model loader end to end short of solving: any bytes either load, compile, calibrate and
//! evaluate their benchmark (and flatten), or are rejected with diagnostics; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = tokencge::model::load_str(text, Path::new("fuzz.toml")) else {
        return;
    };
    let _ = tokencge::flatten::flatten(&model);
    let Ok((structure, coef)) = tokencge::build_model(model) else {
        return;
    };
    if let Ok(setup) = tokencge::scenario::resolve(&structure, &coef, None) {
        let _ = tokencge::report::benchmark_failures(structure.with(&coef), &setup, 1e-9);
    }
    for i in 0..structure.model().scenarios.len() {
        let _ = tokencge::scenario::prepare(&structure, Some(i));
    }
});
