//! Times the load stages of a model file: read, expand, validate, build.
//!
//! ```text
//! cargo run --release --example load_stages -- MODEL
//! ```
use std::time::Instant;

fn main() {
    let path = std::path::PathBuf::from(std::env::args().nth(1).expect("a model file"));
    let t = Instant::now();
    let src = tokencge::model::load::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let read = t.elapsed().as_secs_f64();
    let src = tokencge::model::expand::expand(src).unwrap_or_else(|e| panic!("{e}"));
    let expand = t.elapsed().as_secs_f64() - read;
    let model = tokencge::model::validate(&src).unwrap_or_else(|e| panic!("{e}"));
    let validate = t.elapsed().as_secs_f64() - read - expand;
    drop(src);
    let built = tokencge::build_model(model);
    let build = t.elapsed().as_secs_f64() - read - expand - validate;
    println!(
        "read {read:.3} s, expand {expand:.3} s, validate {validate:.3} s, build {build:.3} s ({})",
        if built.is_ok() { "ok" } else { "failed" }
    );
}
