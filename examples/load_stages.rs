//! Times the load stages of a model file: read (the file and its data files), validate (sets
//! and tables read, the model expanded and checked), build (compile and calibrate), with the
//! memory in use after each (Linux: `VmRSS` of /proc/self/status) and the peak (`VmHWM`).
//!
//! ```text
//! cargo run --release --example load_stages -- MODEL
//! ```
use std::time::Instant;

/// Resident and peak memory in MB, from /proc/self/status (0 where it cannot be read).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let path = std::path::PathBuf::from(std::env::args().nth(1).expect("a model file"));
    let t = Instant::now();
    let src = tokencge::model::load::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let read = t.elapsed().as_secs_f64();
    let m_read = memory();
    let model = tokencge::model::validate(&src).unwrap_or_else(|e| panic!("{e}"));
    let validate = t.elapsed().as_secs_f64() - read;
    drop(src);
    let m_validate = memory();
    let netputs: usize = model.sectors.iter().map(|s| s.netputs.len()).sum();
    let built = tokencge::build_model(model);
    let build = t.elapsed().as_secs_f64() - read - validate;
    let m_build = memory();
    println!(
        "read {read:.3} s ({} MB), validate {validate:.3} s ({} MB), build {build:.3} s ({} MB); peak {} MB; {netputs} netputs, {}",
        m_read.0,
        m_validate.0,
        m_build.0,
        m_build.1,
        if built.is_ok() { "ok" } else { "failed" }
    );
}
