//! The load path scales with the data's non-zeros, counted rather than timed: loading the
//! peers' economy over sets (`tokencge generate`) at N = 20 and N = 40 (four times the
//! netputs), the number of allocations grows with N, not with the netputs (a netput costs no
//! allocation of its own), and the bytes allocated per netput stay bounded. One test in its
//! own binary: the allocator's counters are global (the compile stage runs on rayon's threads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes allocated by reading, expanding, validating and compiling the
/// generated economy at `n`, and its number of netputs.
fn load(n: usize) -> (u64, u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in tokencge::generate::generate(n, 5, 1).indexed_files() {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let path = dir.path().join("model.toml");
    let (a0, b0) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
    let model = tokencge::model::load(&path).unwrap();
    let netputs = model.sectors.iter().map(|s| s.netputs.len()).sum();
    let built = tokencge::build_model(model);
    let (a1, b1) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
    assert!(built.is_ok());
    drop(built);
    (a1 - a0, b1 - b0, netputs)
}

#[test]
fn loading_allocates_in_proportion_to_sectors_and_bytes_to_netputs() {
    let (a20, b20, np20) = load(20);
    let (a40, b40, np40) = load(40);
    // N² intermediate inputs plus a few per sector.
    assert_eq!(np20, 20 * 20 + 3 * 20);
    assert_eq!(np40, 40 * 40 + 3 * 40);
    // Allocations: a constant number per sector, household and name (doubling N about
    // doubles them), none per netput (which would quadruple them).
    let ratio = a40 as f64 / a20 as f64;
    assert!(
        ratio < 2.6,
        "allocations {a20} at N = 20, {a40} at N = 40: ratio {ratio:.2}"
    );
    // Bytes: what the extra netputs cost is bounded per netput (the netput, its leaf, its
    // incidence entry, calibration's numbers for it, its CSV cell and table entry: about 500
    // bytes today), fixed costs apart.
    let marginal = (b40 - b20) as f64 / (np40 - np20) as f64;
    assert!(
        marginal < 800.0,
        "{marginal:.0} bytes allocated per extra netput ({b20} at N = 20, {b40} at N = 40)"
    );
    eprintln!(
        "N = 20: {a20} allocations, {b20} bytes; N = 40: {a40} allocations, {b40} bytes; {marginal:.0} bytes per extra netput"
    );
}
