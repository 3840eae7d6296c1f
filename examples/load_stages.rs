//! Times the load stages of a model file: read (the file and its data files), validate (sets
//! and tables read, the model expanded and checked), build (compile and calibrate).
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
    let model = tokencge::model::validate(&src).unwrap_or_else(|e| panic!("{e}"));
    let validate = t.elapsed().as_secs_f64() - read;
    drop(src);
    let netputs: usize = model.sectors.iter().map(|s| s.netputs.len()).sum();
    let built = tokencge::build_model(model);
    let build = t.elapsed().as_secs_f64() - read - validate;
    println!(
        "read {read:.3} s, validate {validate:.3} s, build {build:.3} s ({netputs} netputs, {})",
        if built.is_ok() { "ok" } else { "failed" }
    );
}
