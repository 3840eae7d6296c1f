//! The iteration state argmin's `Executor` carries for the Newton method, and the observer that
//! turns iterations into `tracing` events.
//!
//! argmin's own `IterState` clones the parameter vector whenever the cost improves and rebuilds
//! its evaluation counters from strings every iteration; this state keeps the current iterate
//! only (the Newton method's progress is judged by the merit function, not by a best point) and
//! counts in place, so an iteration allocates nothing.

use std::collections::HashMap;
use std::time::Duration;

use argmin::core::observers::Observe;
use argmin::core::{Problem, State, TerminationReason, TerminationStatus, KV};

/// Iterate, residuals and bookkeeping of a Newton solve.
#[derive(Debug, Clone)]
pub struct NewtonState {
    /// The current iterate and F there.
    pub x: Vec<f64>,
    pub f: Vec<f64>,
    /// Largest box residual at `x`.
    pub cost: f64,
    pub iter: u64,
    pub max_iters: u64,
    /// Length of the last step and the direction it followed ("newton" or "gradient").
    pub step: f64,
    pub direction: &'static str,
    counts: HashMap<String, u64>,
    time: Option<Duration>,
    status: TerminationStatus,
}

impl NewtonState {
    pub fn residual_evaluations(&self) -> u64 {
        self.counts.get("residual_count").copied().unwrap_or(0)
    }
    pub fn jacobian_evaluations(&self) -> u64 {
        self.counts.get("jacobian_count").copied().unwrap_or(0)
    }
}

impl State for NewtonState {
    type Param = Vec<f64>;
    type Float = f64;

    fn new() -> Self {
        NewtonState {
            x: Vec::new(),
            f: Vec::new(),
            cost: f64::INFINITY,
            iter: 0,
            max_iters: u64::MAX,
            step: f64::NAN,
            direction: "",
            counts: HashMap::new(),
            time: None,
            status: TerminationStatus::NotTerminated,
        }
    }
    fn update(&mut self) {}
    fn get_param(&self) -> Option<&Vec<f64>> {
        Some(&self.x)
    }
    fn get_best_param(&self) -> Option<&Vec<f64>> {
        Some(&self.x)
    }
    fn get_max_iters(&self) -> u64 {
        self.max_iters
    }
    fn increment_iter(&mut self) {
        self.iter += 1;
    }
    fn get_iter(&self) -> u64 {
        self.iter
    }
    fn get_cost(&self) -> f64 {
        self.cost
    }
    fn get_best_cost(&self) -> f64 {
        self.cost
    }
    fn get_target_cost(&self) -> f64 {
        f64::NEG_INFINITY
    }
    fn func_counts<O>(&mut self, problem: &Problem<O>) {
        for (k, &v) in problem.counts.iter() {
            match self.counts.get_mut(*k) {
                Some(c) => *c = v,
                None => {
                    self.counts.insert(k.to_string(), v);
                }
            }
        }
    }
    fn get_func_counts(&self) -> &HashMap<String, u64> {
        &self.counts
    }
    fn time(&mut self, time: Option<Duration>) -> &mut Self {
        self.time = time;
        self
    }
    fn get_time(&self) -> Option<Duration> {
        self.time
    }
    fn get_last_best_iter(&self) -> u64 {
        self.iter
    }
    fn is_best(&self) -> bool {
        true
    }
    fn terminate_with(mut self, reason: TerminationReason) -> Self {
        self.status = TerminationStatus::Terminated(reason);
        self
    }
    fn get_termination_status(&self) -> &TerminationStatus {
        &self.status
    }
    fn get_termination_reason(&self) -> Option<&TerminationReason> {
        match &self.status {
            TerminationStatus::Terminated(r) => Some(r),
            TerminationStatus::NotTerminated => None,
        }
    }
}

/// Turns iterations into `tracing` events (target `tokencge::solve`).
pub struct TracingObserver;

impl Observe<NewtonState> for TracingObserver {
    fn observe_init(
        &mut self,
        name: &str,
        state: &NewtonState,
        _kv: &KV,
    ) -> Result<(), argmin::core::Error> {
        tracing::debug!(target: "tokencge::solve", solver = name, residual = state.cost, "start");
        Ok(())
    }
    fn observe_iter(&mut self, state: &NewtonState, _kv: &KV) -> Result<(), argmin::core::Error> {
        tracing::debug!(
            target: "tokencge::solve",
            iteration = state.iter + 1,
            residual = state.cost,
            step = state.step,
            direction = state.direction,
            "iteration"
        );
        Ok(())
    }
}
