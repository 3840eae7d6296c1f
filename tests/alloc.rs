//! The Newton loop allocates nothing after its first iteration: a counting global allocator,
//! read by an observer after every iteration, on a reference model and on the peer economy at
//! N = 50.

#[path = "../benches/common/peer_model.rs"]
mod peer_model;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use argmin::core::observers::Observe;
use argmin::core::KV;
use tokencge::scenario::{self, Workspace};
use tokencge::solve::{Backend, NewtonSettings, NewtonState};

struct Counting;

thread_local! {
    // Per thread: the test harness runs tests in parallel threads.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Records the allocation counter after every iteration (into storage reserved up front).
struct Recorder(Arc<Mutex<Vec<u64>>>);

impl Observe<NewtonState> for Recorder {
    fn observe_iter(&mut self, _state: &NewtonState, _kv: &KV) -> Result<(), argmin::core::Error> {
        let now = ALLOCATIONS.with(|c| c.get());
        let mut v = self.0.lock().unwrap();
        if v.len() < v.capacity() {
            v.push(now);
        }
        Ok(())
    }
}

/// Allocations counted between consecutive iterations, from the second on.
fn allocations_per_iteration(
    structure: &tokencge::compile::Structure,
    scenario_name: &str,
    backend: Backend,
) -> Vec<u64> {
    let idx = structure.model().scenario_index(scenario_name).unwrap();
    let (sc, coef) = scenario::prepare(structure, Some(idx)).unwrap();
    let mut ws = Workspace::new(structure);
    let marks = Arc::new(Mutex::new(Vec::with_capacity(1000)));
    let sol = scenario::solve_observed(
        structure,
        &coef,
        &sc,
        &NewtonSettings::default().with_backend(backend),
        &mut ws,
        Recorder(marks.clone()),
    );
    assert_eq!(sol.status.label(), "converged", "{scenario_name}");
    let marks = marks.lock().unwrap().clone();
    assert!(
        marks.len() >= 3,
        "{scenario_name}: {} iterations are too few to tell",
        marks.len()
    );
    marks.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn newton_iterations_after_the_first_allocate_nothing_on_a_reference_model() {
    // The 90% output tax of MPSGE M1 takes 10 iterations.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference/mpsge_m1_two_by_two.toml");
    let (structure, _) = tokencge::build(&path).unwrap();
    for backend in [Backend::Dense, Backend::Sparse, Backend::Krylov] {
        let per = allocations_per_iteration(&structure, "otax_0_9", backend);
        assert!(
            per.iter().all(|&a| a == 0),
            "{backend:?}: allocations per iteration: {per:?}"
        );
    }
}

#[test]
fn newton_iterations_after_the_first_allocate_nothing_on_the_peer_economy() {
    let inst = peer_model::generate(50, 5, 1);
    let model = tokencge::model::load_str(&inst.to_toml(), &PathBuf::from("peer50.toml")).unwrap();
    let (structure, _) = tokencge::build_model(model).unwrap();
    for backend in [Backend::Dense, Backend::Sparse, Backend::Krylov] {
        let per = allocations_per_iteration(&structure, "tax1", backend);
        assert!(
            per.iter().all(|&a| a == 0),
            "{backend:?}: allocations per iteration: {per:?}"
        );
    }
}
