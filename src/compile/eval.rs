//! Evaluation of the three equation families (and auxiliary constraints) with their analytic
//! Jacobian, into a per-thread [`EvalWorkspace`] whose buffers are reused from point to point
//! (no allocation once they have grown to size).
//!
//! Per sector: leaf price indices π (with their gradients through prices and endogenous tax
//! rates), nest cost/revenue indices bottom-up, compensated quantities top-down, and the local
//! derivative ∂x_i/∂π_l from the path formula of `docs/equations.md` §3. Final demand comes from
//! the consumer's demand form (`forms`). Everything else is the chain rule.
//!
//! The Jacobian's pattern (the sequence of (row, column) pairs pushed) depends on the structure
//! and on the coefficients (which flows are active, which nests are Leontief), never on the
//! point: a solve analyses it once.

use super::forms::demand::{DemandState, Wrt};
use super::forms::nest::{ces, pw, NestForm};
use super::Layout;
use super::{SectorBlock, Structure};
use crate::calibrate::{Coefficients, SectorCoef, NO_RUN, NO_TOP, UNTAXED};
use crate::expr::{EvalContext, EvalError, Expr, Func, Grad};
use crate::ids::{ConsumerId, SectorId, Var, VarId};
use crate::solve::jacobian::{dot, dot_axpy};
use crate::solve::Jacobian;

/// The point state's slot of leaf `l` (outside runs) of sector block `b`: its parent node's
/// shift (`SectorCoef::node_shift`); the leaf itself in a sector without runs.
#[inline]
fn slot_of(b: &SectorBlock, c: &SectorCoef, l: usize) -> usize {
    if c.state_len == b.leaves.len() {
        l
    } else {
        l - c.node_shift[b.leaves[l].path[0]] as usize
    }
}

/// Why a point could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvaluationError {
    /// A value that must be finite is not (a unit cost, a quantity, a function...).
    #[error("{what} is {value}")]
    NonFinite { what: String, value: f64 },
    /// An expression (tax rate, endowment, constraint) failed.
    #[error("{what}: {error}")]
    Expression { what: String, error: EvalError },
    /// Taxes that make an input free or paid for by its use (a subsidy of 100 % or more):
    /// its demand is unbounded, so there is no equilibrium to look for.
    #[error("{what}: the tax rates add up to {total}, a subsidy of 100 % or more: the input is free to its buyer and its demand unbounded, so no equilibrium exists")]
    PriceWedge { what: String, total: f64 },
}

/// Values of one sector at a point.
///
/// The per-leaf arrays (`pi`, `quantity` and π^(−σ)) hold the leaves outside runs only, in
/// order (leaf l of node k at `l − SectorCoef::node_shift[k]`): a run's quantities are its
/// benchmark quantities whatever the prices, and its π enter only its unit cost.
#[derive(Debug, Clone, Default)]
pub struct SectorState {
    /// Leaf price indices π (leaves outside runs).
    pub pi: Vec<f64>,
    /// Physical quantity per unit of activity of each leaf outside runs (demand or supply).
    pub quantity: Vec<f64>,
    /// Unit cost and unit revenue.
    pub cost: f64,
    pub revenue: f64,
    /// The rate of every tax, flat (leaf l's taxes start at its `first_tax`).
    pub tax_rate: Vec<f64>,
    /// Gradients of the price indices of taxed leaves, flat: the taxed leaf of rank r has
    /// `pi_grad[pi_grad_start[r]..pi_grad_start[r + 1]]` (an untaxed leaf's is 1/p̄ on its
    /// price, never stored).
    pi_grad: Grad,
    pi_grad_start: Vec<usize>,
    /// Gradients of the tax rates, flat in the same way.
    tax_grad: Grad,
    tax_grad_start: Vec<usize>,
    /// Per leaf i outside runs (at its slot q): ∂x_i/∂π_l for l = dx_first[q].., flat at the
    /// offsets of `SectorCoef::dx_start`.
    dx: Vec<f64>,
    /// π^(−σ) of the leaves of CES nests (NaN where not computed: a zero price).
    pw_neg: Vec<f64>,
    /// Node scratch: cost indices, quantity multipliers, values V_n (where needed).
    cn: Vec<f64>,
    mult: Vec<f64>,
    value: Vec<f64>,
    has_grad: bool,
    /// Evaluated for the solver: a run's unit cost from its quantities and prices in the same
    /// pass that gives its market terms.
    lean: bool,
}

impl SectorState {
    /// Calls `f(l, slot, quantity)` for every leaf in order: a leaf outside runs with its
    /// point-state slot, a run's with none, at its benchmark quantity.
    #[inline]
    fn each_quantity(&self, c: &SectorCoef, mut f: impl FnMut(usize, Option<usize>, f64)) {
        for k in 0..c.node_run.len() {
            let (a, z) = c.node_direct[k];
            if c.node_run[k] != NO_RUN {
                (a..z).for_each(|l| f(l, None, c.quantity[l]));
            } else {
                let shift = c.node_shift[k] as usize;
                (a..z).for_each(|l| f(l, Some(l - shift), self.quantity[l - shift]));
            }
        }
    }

    /// Calls `f(variable, ∂π_l/∂variable)` for the gradient of leaf l's price index (`q` its
    /// slot).
    #[inline]
    fn pi_grad_each(&self, c: &SectorCoef, (l, q): (usize, usize), mut f: impl FnMut(usize, f64)) {
        match c.taxed_rank[q] {
            UNTAXED => f(c.leaf_price[l] as usize, c.inv_price[l]),
            r => {
                let r = r as usize;
                for &(v, d) in &self.pi_grad[self.pi_grad_start[r]..self.pi_grad_start[r + 1]] {
                    f(v, d);
                }
            }
        }
    }
    fn tax_grad_of(&self, t: usize) -> &[(usize, f64)] {
        &self.tax_grad[self.tax_grad_start[t]..self.tax_grad_start[t + 1]]
    }
}

/// Values of one consumer at a point.
#[derive(Debug, Clone, Default)]
pub struct ConsumerState {
    /// Price index, demands and welfare of the demand system.
    pub demand: DemandState,
    pub endowment: Vec<f64>,
    pub endowment_value: f64,
    /// Tax revenue received.
    pub revenue: f64,
    /// Prices of the demanded commodities (scratch).
    prices: Vec<f64>,
    endowment_grad: Grad,
    endowment_grad_start: Vec<usize>,
}

impl ConsumerState {
    pub fn welfare(&self) -> f64 {
        self.demand.welfare
    }
    pub fn price_index(&self) -> f64 {
        self.demand.price_index
    }
    fn endowment_grad_of(&self, k: usize) -> &[(usize, f64)] {
        &self.endowment_grad[self.endowment_grad_start[k]..self.endowment_grad_start[k + 1]]
    }
}

/// Everything computed at a point, for the equations, the functions and the reports.
#[derive(Debug, Clone, Default)]
pub struct PointState {
    pub sectors: Vec<SectorState>,
    pub consumers: Vec<ConsumerState>,
    /// Lean evaluations only: the runs' market terms ±level·Q summed by market row, written in
    /// the same pass over the benchmark quantities that gives the runs' unit costs (one pass
    /// over an input-output block instead of two).
    run_market: Vec<f64>,
    /// The second half's market terms when the sectors are evaluated in two halves
    /// ([`Structure::halfway_sector`]).
    run_market_second: Vec<f64>,
    /// Scratch shared by the sectors (one per half): the π of one run, for its unit cost by
    /// the general formula (evaluations for reports and calibration).
    run_pi: Vec<f64>,
    run_pi_second: Vec<f64>,
}

/// Per-thread scratch of the evaluation; sized for one structure.
#[derive(Debug, Clone, Default)]
pub struct EvalWorkspace {
    pub point: PointState,
    grad: Grad,
}

impl EvalWorkspace {
    pub fn new(structure: &Structure) -> EvalWorkspace {
        EvalWorkspace {
            point: PointState {
                sectors: vec![SectorState::default(); structure.sectors.len()],
                consumers: vec![ConsumerState::default(); structure.consumers.len()],
                run_market: Vec::new(),
                run_market_second: Vec::new(),
                run_pi: Vec::new(),
                run_pi_second: Vec::new(),
            },
            grad: Grad::new(),
        }
    }
}

/// Function scales, and per consumer the price index and subsistence cost at the point.
pub(crate) type ScalesAndReferences = (Vec<f64>, Vec<(f64, f64)>);

/// Whether an evaluation computes the point state (with the price gradients a Jacobian needs
/// or not) or finds it already in the workspace.
#[derive(Debug, Clone, Copy)]
enum PointEval {
    Compute { grad: bool },
    Kept,
}

/// Lower and upper bounds of every variable.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// A structure at one parameter vector: what evaluation and solving work on.
#[derive(Debug, Clone, Copy)]
pub struct System<'a> {
    pub structure: &'a Structure,
    pub coef: &'a Coefficients,
}

struct VarCtx<'a> {
    params: &'a [f64],
    layout: &'a Layout,
    x: &'a [f64],
}

impl EvalContext for VarCtx<'_> {
    fn param(&self, i: usize) -> f64 {
        self.params[i]
    }
    fn var(&self, v: Var) -> f64 {
        self.x[self.var_index(v)]
    }
    fn var_index(&self, v: Var) -> usize {
        self.layout.index_of(v).index()
    }
    fn func(&self, _f: &Func, _s: f64, _g: Option<&mut Grad>) -> Result<f64, EvalError> {
        Err(EvalError::NoFunctions)
    }
}

fn finite(v: f64, what: impl FnOnce() -> String) -> Result<f64, EvaluationError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(EvaluationError::NonFinite {
            what: what(),
            value: v,
        })
    }
}

fn reset<T: Clone>(v: &mut Vec<T>, n: usize, value: T) {
    v.clear();
    v.resize(n, value);
}

impl<'a> System<'a> {
    fn model(&self) -> &'a crate::model::Model {
        self.structure.model()
    }

    pub fn dim(&self) -> usize {
        self.structure.dim()
    }

    /// The tax rates of leaf `l` (pushed into `st.tax_rate`, with their gradients when `grad`)
    /// and its price factor 1 ± Σ t.
    fn leaf_taxes(
        &self,
        si: usize,
        l: usize,
        ctx: &VarCtx<'_>,
        grad: bool,
        st: &mut SectorState,
    ) -> Result<f64, EvaluationError> {
        let leaf = &self.structure.sectors[si].leaves[l];
        let rate_error = |error: EvalError| EvaluationError::Expression {
            what: format!(
                "{}: tax rate on {} ({})",
                self.model().sectors[si].name,
                self.model().commodities[leaf.commodity].name,
                self.model().sectors[si].netputs[leaf.netput].site
            ),
            error,
        };
        let mut total = 0.0;
        let tax_const = &self.coef.sectors[si].tax_const;
        for (k, tax) in leaf.taxes.iter().enumerate() {
            let t = if let Some(t) = tax_const[leaf.first_tax as usize + k] {
                if grad {
                    st.tax_grad_start.push(st.tax_grad.len());
                }
                t
            } else if grad {
                let t = tax
                    .rate
                    .eval_grad(ctx, 1.0, Some(&mut st.tax_grad))
                    .map_err(rate_error)?;
                st.tax_grad_start.push(st.tax_grad.len());
                t
            } else {
                tax.rate.eval(ctx).map_err(rate_error)?
            };
            st.tax_rate.push(t);
            total += t;
        }
        let sign = if leaf.output { -1.0 } else { 1.0 };
        let factor = 1.0 + sign * total;
        // An input made free (or paid for) by subsidies has unbounded demand: no equilibrium
        // to look for. (An output taxed at 100 % or more merely shuts its sector down.)
        if self.coef.sectors[si].leaf_active[l] && !leaf.output && factor <= 0.0 {
            let what = format!(
                "{}: taxes on {} ({})",
                self.model().sectors[si].name,
                self.model().commodities[leaf.commodity].name,
                self.model().sectors[si].netputs[leaf.netput].site
            );
            return Err(EvaluationError::PriceWedge { what, total });
        }
        Ok(factor)
    }

    fn sector_state(
        &self,
        si: usize,
        x: &[f64],
        (grad, lean): (bool, bool),
        st: &mut SectorState,
        (run_market, run_pi): (&mut [f64], &mut Vec<f64>),
    ) -> Result<(), EvaluationError> {
        let b: &SectorBlock = &self.structure.sectors[si];
        let c: &SectorCoef = &self.coef.sectors[si];
        let ctx = VarCtx {
            params: self.coef.params(),
            layout: self.structure.layout(),
            x,
        };
        // Every entry an evaluation reads is written below: no clearing per point.
        let ns = c.state_len;
        st.pi.resize(ns, 0.0);
        st.quantity.resize(ns, 0.0);
        st.pw_neg.resize(ns, f64::NAN);
        st.tax_rate.clear();
        st.has_grad = grad;
        st.lean = lean;
        if grad {
            st.pi_grad.clear();
            st.pi_grad_start.clear();
            st.pi_grad_start.push(0);
            st.tax_grad.clear();
            st.tax_grad_start.clear();
            st.tax_grad_start.push(0);
        }
        // Leaf price indices π = P·(1 ± Σ t)/p̄ from the compact per-leaf arrays; only taxed
        // leaves look at the structure (and store a gradient). Nodes in preorder give leaves in
        // order; the leaves of runs (untaxed) have no π kept.
        for k in 0..b.nodes.len() {
            if c.node_run[k] != NO_RUN {
                continue;
            }
            let (a, z) = c.node_direct[k];
            let shift = c.node_shift[k] as usize;
            for l in a..z {
                let p = x[c.leaf_price[l] as usize];
                if c.taxed_rank[l - shift] == UNTAXED {
                    st.pi[l - shift] = p * c.inv_price[l];
                    continue;
                }
                let factor = self.leaf_taxes(si, l, &ctx, grad, st)?;
                let inv_pbar = c.inv_price[l];
                st.pi[l - shift] = p * factor * inv_pbar;
                if grad {
                    st.pi_grad
                        .push((c.leaf_price[l] as usize, factor * inv_pbar));
                    let leaf = &b.leaves[l];
                    let sign = if leaf.output { -1.0 } else { 1.0 };
                    let first = leaf.first_tax as usize;
                    for t in first..first + leaf.taxes.len() {
                        let (ta, tz) = (st.tax_grad_start[t], st.tax_grad_start[t + 1]);
                        for q in ta..tz {
                            let (v, d) = st.tax_grad[q];
                            st.pi_grad.push((v, sign * p * d * inv_pbar));
                        }
                    }
                    st.pi_grad_start.push(st.pi_grad.len());
                }
            }
        }
        // Node indices bottom-up (children follow parents in preorder). A node without flows
        // gets index 1: it has no share anywhere, and its quantities are zero.
        let nn = b.nodes.len();
        reset(&mut st.cn, nn, 0.0);
        for k in (0..nn).rev() {
            if !c.node_active[k] {
                st.cn[k] = 1.0;
                continue;
            }
            let (a, z) = c.node_direct[k];
            let shift = c.node_shift[k] as usize;
            let (sa, sz) = (a - shift, z - shift);
            let node = &b.nodes[k];
            let nodes = node.nodes.iter().map(|&j| (c.node_share[j], st.cn[j]));
            let run = c.node_run[k];
            st.cn[k] = if lean && run != NO_RUN {
                // A run: Σ (θ/p̄)·P = Σ Q·P / V (θ = p̄·Q/V) straight from the prices, and in
                // the same pass over Q the market terms ±level·Q.
                let p0 = run as usize;
                let sign = if c.leaf_output[a] { 1.0 } else { -1.0 };
                let range = p0..p0 + (z - a);
                let qp = dot_axpy(
                    &c.quantity[a..z],
                    &x[range.clone()],
                    sign * x[b.var],
                    &mut run_market[range],
                );
                qp / c.node_weight[k] + nodes.map(|(t, v)| t * v).sum::<f64>()
            } else if run != NO_RUN {
                // A run by the general (Leontief) formula, its π in scratch.
                run_pi.clear();
                run_pi.extend((a..z).map(|l| x[c.leaf_price[l] as usize] * c.inv_price[l]));
                dot(&c.leaf_share[a..z], run_pi) + nodes.map(|(t, v)| t * v).sum::<f64>()
            } else if c.node_sigma[k] == 0.0 {
                // Leontief: a dot product over contiguous leaves.
                dot(&c.leaf_share[a..z], &st.pi[sa..sz]) + nodes.map(|(t, v)| t * v).sum::<f64>()
            } else if NestForm::from_sigma(c.node_sigma[k]) == NestForm::CobbDouglas {
                let leaves = (a..z).map(|l| (c.leaf_share[l], st.pi[l - shift]));
                ces(c.node_sigma[k], leaves.chain(nodes))
            } else {
                // CES: one powf per leaf, π^(−σ), kept for the quantities (x = Q·m·c^σ·π^(−σ));
                // π^(1−σ) = π·π^(−σ). A zero price takes the plain formula.
                let sigma = c.node_sigma[k];
                let rho = 1.0 - sigma;
                let mut sum = 0.0;
                for l in a..z {
                    let (t, v) = (c.leaf_share[l], st.pi[l - shift]);
                    if t > 0.0 {
                        if v > 0.0 {
                            let pn = v.powf(-sigma);
                            st.pw_neg[l - shift] = pn;
                            sum += t * v * pn;
                        } else {
                            st.pw_neg[l - shift] = f64::NAN;
                            sum += t * v.powf(rho);
                        }
                    }
                }
                for (t, v) in nodes {
                    if t > 0.0 {
                        sum += t * v.powf(rho);
                    }
                }
                sum.powf(1.0 / rho)
            };
        }
        // Quantities top-down.
        reset(&mut st.mult, nn, 1.0);
        for k in 0..nn {
            let node = &b.nodes[k];
            let sigma = c.node_sigma[k];
            for &j in &node.nodes {
                st.mult[j] = st.mult[k] * pw(st.cn[k] / st.cn[j], sigma);
            }
            let (a, z) = c.node_direct[k];
            let shift = c.node_shift[k] as usize;
            let m = st.mult[k];
            if c.node_run[k] != NO_RUN {
                // Quantities stay the benchmark's (kept in the coefficients): m = 1 under
                // fixed proportions all the way up.
            } else if sigma == 0.0 {
                // Fixed proportions (an inactive leaf has Q = 0).
                let q = &mut st.quantity[a - shift..z - shift];
                for (q, bq) in q.iter_mut().zip(&c.quantity[a..z]) {
                    *q = bq * m;
                }
            } else if NestForm::from_sigma(sigma) == NestForm::CobbDouglas {
                for l in a..z {
                    st.quantity[l - shift] = if c.leaf_active[l] {
                        c.quantity[l] * m * (st.cn[k] / st.pi[l - shift])
                    } else {
                        0.0
                    };
                }
            } else {
                let m_c = m * st.cn[k].powf(sigma);
                for l in a..z {
                    let pn = st.pw_neg[l - shift];
                    st.quantity[l - shift] = if !c.leaf_active[l] {
                        0.0
                    } else if pn.is_nan() {
                        c.quantity[l] * m * pw(st.cn[k] / st.pi[l - shift], sigma)
                    } else {
                        c.quantity[l] * m_c * pn
                    };
                }
            }
        }
        st.cost = b
            .input_root
            .map(|r| c.node_weight[r] * st.cn[r])
            .unwrap_or(0.0);
        st.revenue = b
            .output_root
            .map(|r| c.node_weight[r] * st.cn[r])
            .unwrap_or(0.0);
        let name = || self.model().sectors[si].name.clone();
        finite(st.cost, || format!("unit cost of {}", name()))?;
        finite(st.revenue, || format!("unit revenue of {}", name()))?;
        if !st.quantity.iter().all(|q| q.is_finite()) {
            for (l, q) in c.leaves_outside_runs() {
                finite(st.quantity[q], || {
                    format!(
                        "{}: quantity of {} ({})",
                        name(),
                        self.model().commodities[b.leaves[l].commodity].name,
                        self.model().sectors[si].netputs[b.leaves[l].netput].site
                    )
                })?;
            }
        }
        if grad {
            self.quantity_derivatives(b, c, st);
        }
        Ok(())
    }

    /// ∂x_i/∂π_l of every active leaf (`docs/equations.md` §3), at the offsets calibration
    /// laid out; leaves that respond to no price (every leaf of a Leontief nest) cost nothing.
    fn quantity_derivatives(&self, b: &SectorBlock, c: &SectorCoef, st: &mut SectorState) {
        reset(&mut st.dx, c.dx_start[c.state_len] as usize, 0.0);
        if st.dx.is_empty() {
            return;
        }
        // V_n = Σ p̄·x·π over the node's leaves, where a derivative needs it. No run lies
        // below a node with σ ≠ 0 there or at its parent (nor below any node on a responsive
        // path), so the node's leaves are consecutive in the point state too.
        let nn = b.nodes.len();
        reset(&mut st.value, nn, 0.0);
        for k in 0..nn {
            if c.node_valued[k] {
                let (a, z) = b.nodes[k].leaves;
                let shift = c.node_shift[k] as usize;
                st.value[k] = (a..z)
                    .map(|l| c.price[l - shift] * st.quantity[l - shift] * st.pi[l - shift])
                    .sum();
            }
        }
        // The leaves of runs never respond to prices (fixed proportions all the way up).
        for (i, si) in c.leaves_outside_runs() {
            // Highest responsive node on the path decides which leaves can move x_i.
            if c.leaf_top[si] == NO_TOP {
                continue;
            }
            let top = c.leaf_top[si] as usize;
            let path = &b.leaves[i].path;
            let start = c.dx_first[si] as usize;
            let row = &mut st.dx[c.dx_start[si] as usize..c.dx_start[si + 1] as usize];
            for (j, &k) in path.iter().enumerate().take(top + 1) {
                let sigma = c.node_sigma[k];
                if sigma == 0.0 {
                    continue;
                }
                let vk = st.value[k];
                if vk != 0.0 {
                    let (a, z) = b.nodes[k].leaves;
                    let shift = c.node_shift[k] as usize;
                    for l in a..z {
                        let (p, x) = (c.price[l - shift], st.quantity[l - shift]);
                        row[l - start] += sigma * p * x / vk;
                    }
                }
                if j == 0 {
                    row[i - start] -= sigma / st.pi[si];
                } else {
                    let below = path[j - 1];
                    let vb = st.value[below];
                    if vb != 0.0 {
                        let (a, z) = b.nodes[below].leaves;
                        let shift = c.node_shift[below] as usize;
                        for l in a..z {
                            let (p, x) = (c.price[l - shift], st.quantity[l - shift]);
                            row[l - start] -= sigma * p * x / vb;
                        }
                    }
                }
            }
            let xi = st.quantity[si];
            for r in row.iter_mut() {
                *r *= xi;
            }
        }
    }

    fn consumer_state(
        &self,
        h: usize,
        x: &[f64],
        grad: bool,
        st: &mut ConsumerState,
    ) -> Result<(), EvaluationError> {
        let b = &self.structure.consumers[h];
        let c = &self.coef.consumers[h];
        let name = || self.model().consumers[h].name.clone();
        let endowment = |k: usize| {
            let site = &self.model().consumers[h].endowments[k].site;
            format!("endowment of {} ({site})", name())
        };
        st.prices.clear();
        st.prices.extend(b.demands.iter().map(|d| x[d.price_var]));
        c.form
            .evaluate(&st.prices, x[b.var], &mut st.demand)
            .map_err(|e| match e {
                super::forms::demand::NonFinite::PriceIndex(v) => EvaluationError::NonFinite {
                    what: format!("price index of {}", name()),
                    value: v,
                },
                super::forms::demand::NonFinite::Demand(_, v) => EvaluationError::NonFinite {
                    what: format!("final demand of {}", name()),
                    value: v,
                },
            })?;
        let ctx = VarCtx {
            params: self.coef.params(),
            layout: self.structure.layout(),
            x,
        };
        st.endowment.clear();
        st.endowment_value = 0.0;
        st.revenue = 0.0;
        if grad {
            st.endowment_grad.clear();
            st.endowment_grad_start.clear();
            st.endowment_grad_start.push(0);
        }
        for (k, e) in b.endowments.iter().enumerate() {
            let v = if !c.endowment_active[k] {
                0.0
            } else if let Some(v) = c.endowment_const[k] {
                v
            } else if grad {
                e.quantity
                    .eval_grad(&ctx, 1.0, Some(&mut st.endowment_grad))
                    .map_err(|error| EvaluationError::Expression {
                        what: endowment(k),
                        error,
                    })?
            } else {
                e.quantity
                    .eval(&ctx)
                    .map_err(|error| EvaluationError::Expression {
                        what: endowment(k),
                        error,
                    })?
            };
            if grad {
                st.endowment_grad_start.push(st.endowment_grad.len());
            }
            st.endowment.push(finite(v, || endowment(k))?);
            if c.endowment_active[k] {
                st.endowment_value += v * x[e.price_var];
            }
        }
        Ok(())
    }

    /// Evaluates every sector and consumer at `x` into `st`.
    pub fn point_into(
        &self,
        x: &[f64],
        grad: bool,
        st: &mut PointState,
    ) -> Result<(), EvaluationError> {
        self.point_with(x, (grad, false), st)
    }

    /// The states of `sectors`, the structure's sectors from `first` on, with the runs'
    /// market terms summed into `scratch.0`.
    fn sector_states(
        &self,
        first: usize,
        sectors: &mut [SectorState],
        x: &[f64],
        mode: (bool, bool),
        (run_market, run_pi): (&mut [f64], &mut Vec<f64>),
    ) -> Result<(), EvaluationError> {
        for (i, s) in sectors.iter_mut().enumerate() {
            self.sector_state(first + i, x, mode, s, (&mut *run_market, &mut *run_pi))?;
        }
        Ok(())
    }

    /// [`System::point_into`], or lean for the solver (no per-leaf state for runs).
    fn point_with(
        &self,
        x: &[f64],
        mode: (bool, bool),
        st: &mut PointState,
    ) -> Result<(), EvaluationError> {
        let grad = mode.0;
        let lean = mode.1;
        if lean {
            reset(&mut st.run_market, self.dim(), 0.0);
        }
        match self.structure.halfway_sector() {
            None => {
                let scratch = (&mut st.run_market[..], &mut st.run_pi);
                self.sector_states(0, &mut st.sectors, x, mode, scratch)?;
            }
            Some(half) => {
                // Two halves fixed by the structure, the second's market terms summed apart
                // and added after: the same sums whatever the thread count.
                if lean {
                    reset(&mut st.run_market_second, self.dim(), 0.0);
                }
                let (first, second) = st.sectors.split_at_mut(half);
                let scratch = (&mut st.run_market[..], &mut st.run_pi);
                let scratch_second = (&mut st.run_market_second[..], &mut st.run_pi_second);
                let (a, b) = rayon::join(
                    || self.sector_states(0, first, x, mode, scratch),
                    || self.sector_states(half, second, x, mode, scratch_second),
                );
                a?;
                b?;
                if lean {
                    for (m, m2) in st.run_market.iter_mut().zip(&st.run_market_second) {
                        *m += m2;
                    }
                }
            }
        }
        for (h, s) in st.consumers.iter_mut().enumerate() {
            self.consumer_state(h, x, grad, s)?;
        }
        for (h, taxes) in self.structure.incidence().taxes.iter().enumerate() {
            let mut revenue = 0.0;
            for &(si, l, k) in taxes {
                let b = &self.structure.sectors[si];
                let leaf = &b.leaves[l];
                let s = &st.sectors[si];
                revenue += x[b.var]
                    * s.tax_rate[leaf.first_tax as usize + k]
                    * x[leaf.price_var]
                    * s.quantity[slot_of(b, &self.coef.sectors[si], l)];
            }
            st.consumers[h].revenue = revenue;
        }
        Ok(())
    }

    /// Evaluates every sector and consumer at `x` (allocating a fresh state).
    pub fn point(&self, x: &[f64]) -> Result<PointState, EvaluationError> {
        let mut ws = EvalWorkspace::new(self.structure);
        self.point_into(x, false, &mut ws.point)?;
        Ok(ws.point)
    }

    /// Pushes `scale · ∂x_i/∂(variables)` of leaf `i` (outside runs, at slot `q`).
    fn leaf_grad(
        &self,
        si: usize,
        st: &SectorState,
        (i, q): (usize, usize),
        scale: f64,
        g: &mut Grad,
    ) {
        let c = &self.coef.sectors[si];
        let start = c.dx_first[q] as usize;
        // The row's leaves lie in no run: their slots are as consecutive as they are.
        let start_slot = q + start - i;
        let row = &st.dx[c.dx_start[q] as usize..c.dx_start[q + 1] as usize];
        for (o, d) in row.iter().enumerate() {
            if !c.leaf_active[start + o] {
                continue;
            }
            st.pi_grad_each(c, (start + o, start_slot + o), |v, gp| {
                g.push((v, scale * d * gp))
            });
        }
    }

    /// Pushes `scale ·` the gradient of the revenue S·t·P·x of tax `k` on leaf `l`.
    #[allow(clippy::too_many_arguments)]
    fn tax_revenue_grad(
        &self,
        si: usize,
        st: &SectorState,
        x: &[f64],
        l: usize,
        k: usize,
        scale: f64,
        g: &mut Grad,
    ) {
        let b = &self.structure.sectors[si];
        let leaf = &b.leaves[l];
        let t_index = leaf.first_tax as usize + k;
        let cvar = leaf.price_var.index();
        let slot = slot_of(b, &self.coef.sectors[si], l);
        let q = st.quantity[slot];
        let (level, p, t) = (x[b.var], x[cvar], st.tax_rate[t_index]);
        g.push((b.var.index(), scale * t * p * q));
        g.push((cvar, scale * level * t * q));
        for &(v, d) in st.tax_grad_of(t_index) {
            g.push((v, scale * level * p * q * d));
        }
        self.leaf_grad(si, st, (l, slot), scale * level * t * p, g);
    }

    /// Pushes `scale ·` the gradient of final demand `k` of consumer `h`.
    fn demand_grad(&self, h: usize, st: &ConsumerState, k: usize, scale: f64, g: &mut Grad) {
        let b = &self.structure.consumers[h];
        self.coef.consumers[h]
            .form
            .demand_partials(&st.demand, k, scale, |wrt, v| match wrt {
                Wrt::Income => g.push((b.var.index(), v)),
                Wrt::Price(j) => g.push((b.demands[j].price_var.index(), v)),
            });
    }

    fn welfare_grad(&self, h: usize, st: &ConsumerState, scale: f64, g: &mut Grad) {
        let b = &self.structure.consumers[h];
        self.coef.consumers[h]
            .form
            .welfare_partials(&st.demand, scale, |wrt, v| match wrt {
                Wrt::Income => g.push((b.var.index(), v)),
                Wrt::Price(j) => g.push((b.demands[j].price_var.index(), v)),
            });
    }

    /// Equivalent variation of consumer `h` at an evaluated point: E(p_ref, welfare) − M̄, M̄
    /// the benchmark income under the same overrides as these coefficients.
    pub fn ev(&self, h: ConsumerId, st: &PointState) -> f64 {
        let c = &self.coef.consumers[h];
        let reference = match &self.coef.reference_income {
            Some(incomes) => incomes[h],
            None => self.structure.benchmark_income[h],
        };
        c.form
            .expenditure(st.consumers[h].demand.welfare, c.e_ref, c.fixed_ref)
            - reference
    }

    /// Scaled residual of every function at `x` (inactive variables get 0).
    pub fn residual(
        &self,
        x: &[f64],
        f: &mut [f64],
        ws: &mut EvalWorkspace,
    ) -> Result<(), EvaluationError> {
        self.evaluate(x, f, None, PointEval::Compute { grad: false }, ws)
    }

    /// [`System::residual`], leaving in `ws` the whole point state a Jacobian at `x` needs
    /// (price gradients included), so that [`System::residual_jacobian_from_state`] at the
    /// same `x` can skip it: a Newton iteration's Jacobian is taken at the point the line
    /// search accepted, whose state was its last evaluation, and computing that state is the
    /// evaluation's one pass over an input-output block.
    pub fn residual_keeping_state(
        &self,
        x: &[f64],
        f: &mut [f64],
        ws: &mut EvalWorkspace,
    ) -> Result<(), EvaluationError> {
        self.evaluate(x, f, None, PointEval::Compute { grad: true }, ws)
    }

    /// Scaled residual, and the scaled Jacobian of the active functions emitted into `jac`
    /// (sparse entries, and a rank-one term per consumer for the cross-price derivatives of
    /// final demand), in an order that does not depend on `x`. The caller begins and finishes
    /// the evaluation on `jac` ([`Jacobian::begin`], [`Jacobian::finish`]).
    pub fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Jacobian,
        ws: &mut EvalWorkspace,
    ) -> Result<(), EvaluationError> {
        self.evaluate(x, f, Some(jac), PointEval::Compute { grad: true }, ws)
    }

    /// [`System::residual_jacobian`] at the `x` of the last successful
    /// [`System::residual_keeping_state`] or [`System::residual_jacobian`] into `ws` (the caller
    /// vouches for it, with the same coefficients): the point state in `ws` is used as it is.
    /// The numbers are those of [`System::residual_jacobian`], bit for bit.
    pub fn residual_jacobian_from_state(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Jacobian,
        ws: &mut EvalWorkspace,
    ) -> Result<(), EvaluationError> {
        self.evaluate(x, f, Some(jac), PointEval::Kept, ws)
    }

    /// The scaled residual and the whole Jacobian at `x`, recorded afresh (tests, benches).
    pub fn jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        ws: &mut EvalWorkspace,
    ) -> Result<Jacobian, EvaluationError> {
        let mut jac = Jacobian::new(self.dim());
        jac.begin(self.dim(), true);
        self.residual_jacobian(x, f, &mut jac, ws)?;
        jac.finish().expect("recording always fits");
        Ok(jac)
    }

    fn evaluate(
        &self,
        x: &[f64],
        f: &mut [f64],
        mut jac: Option<&mut Jacobian>,
        point: PointEval,
        ws: &mut EvalWorkspace,
    ) -> Result<(), EvaluationError> {
        let grad = jac.is_some();
        let EvalWorkspace { point: st, grad: g } = ws;
        match point {
            PointEval::Compute { grad: state_grad } => {
                self.point_with(x, (grad || state_grad, true), st)?
            }
            PointEval::Kept => debug_assert!(st.sectors.iter().all(|s| s.has_grad && s.lean)),
        }
        // The runs' market terms were summed while their unit costs were computed.
        f.copy_from_slice(&st.run_market);
        let active = &self.coef.active;
        let scale = &self.coef.scale;
        // Emits the gradient collected in `g` as row `row` of the scaled Jacobian.
        let inv_scale = &self.coef.inv_scale;
        if let Some(j) = jac.as_deref_mut() {
            j.set_row_weights(inv_scale);
        }
        let push =
            |jac: &mut Option<&mut Jacobian>, row: VarId, g: &mut Grad| match jac.as_deref_mut() {
                Some(j) if active[row] => {
                    let inv = inv_scale[row];
                    for (c, v) in g.drain(..) {
                        j.add(row.index(), c, v * inv);
                    }
                }
                _ => g.clear(),
            };
        for (si, b) in self.structure.sectors.iter().enumerate() {
            let s = &st.sectors[si];
            let c = &self.coef.sectors[si];
            let level = x[b.var];
            let sector_row = b.var.index();
            if active[b.var] {
                f[sector_row] = s.cost - s.revenue;
                if let Some(j) = jac.as_deref_mut() {
                    // Zero profit: Σ ±p̄·x·∂π (Shephard's lemma), entry by entry.
                    let inv = inv_scale[sector_row];
                    for (l, q) in c.leaves_outside_runs() {
                        if !c.leaf_active[l] {
                            continue;
                        }
                        let sign = if c.leaf_output[l] { -1.0 } else { 1.0 };
                        let a = sign * c.price[q] * s.quantity[q] * inv;
                        s.pi_grad_each(c, (l, q), |v, d| j.add(sector_row, v, a * d));
                    }
                }
            }
            for k in 0..b.nodes.len() {
                let (a, z) = c.node_direct[k];
                if c.node_run[k] != NO_RUN {
                    // A run: its market rows and Jacobian runs straight from the benchmark
                    // quantities (zero profit: ±Q by Shephard's lemma; markets: ±Q).
                    let p0 = c.node_run[k] as usize;
                    let sign = if c.leaf_output[a] { 1.0 } else { -1.0 };
                    // The values depend on the coefficients only and are not stored: every
                    // reader of the Jacobian forms them from the coefficients' quantities.
                    if let Some(j) = jac.as_deref_mut() {
                        if active[b.var] {
                            let zp = -sign * inv_scale[sector_row];
                            j.add_row_run_shared((sector_row, p0), &c.quantity, a..z, zp);
                        }
                        // Market rows: ±Q weighted by each row's function scale.
                        j.add_col_run_shared((p0, sector_row), &c.quantity, a..z, sign);
                    }
                    continue;
                }
                let shift = c.node_shift[k] as usize;
                for l in a..z {
                    if !c.leaf_active[l] {
                        continue;
                    }
                    let row = c.leaf_price[l] as usize;
                    let sign = if c.leaf_output[l] { 1.0 } else { -1.0 };
                    let q = s.quantity[l - shift];
                    f[row] += sign * level * q;
                    if let Some(j) = jac.as_deref_mut() {
                        if active[row] {
                            // Market clearance: ∂/∂level, then through the leaf's price
                            // responses.
                            let inv = inv_scale[row];
                            j.add(row, sector_row, sign * q * inv);
                            if c.leaf_top[l - shift] != NO_TOP {
                                self.leaf_grad(si, s, (l, l - shift), sign * level * inv, g);
                                for (v, d) in g.drain(..) {
                                    j.add(row, v, d);
                                }
                            }
                        }
                    }
                    if grad && c.taxed_rank[l - shift] != UNTAXED {
                        for (k, tax) in b.leaves[l].taxes.iter().enumerate() {
                            let hrow = self.structure.consumers[tax.agent].var;
                            self.tax_revenue_grad(si, s, x, l, k, -1.0, g);
                            push(&mut jac, hrow, g);
                        }
                    }
                }
            }
        }
        for (h, b) in self.structure.consumers.iter().enumerate() {
            let s = &st.consumers[h];
            let c = &self.coef.consumers[h];
            f[b.var.index()] += x[b.var] - s.endowment_value - s.revenue;
            if grad {
                g.push((b.var.index(), 1.0));
                push(&mut jac, b.var, g);
            }
            for (k, e) in b.endowments.iter().enumerate() {
                if !c.endowment_active[k] {
                    continue;
                }
                let row = e.price_var;
                f[row.index()] += s.endowment[k];
                if grad {
                    g.extend(s.endowment_grad_of(k).iter().copied());
                    push(&mut jac, row, g);
                    let p = x[row];
                    g.push((row.index(), -s.endowment[k]));
                    g.extend(s.endowment_grad_of(k).iter().map(|&(v, d)| (v, -p * d)));
                    push(&mut jac, b.var, g);
                }
            }
            for (k, d) in b.demands.iter().enumerate() {
                if c.form.benchmark_quantity(k) == 0.0 {
                    continue;
                }
                let row = d.price_var;
                f[row.index()] -= s.demand.demand[k];
                if grad {
                    c.form
                        .demand_partials_sparse(&s.demand, k, -1.0, |wrt, v| match wrt {
                            Wrt::Income => g.push((b.var.index(), v)),
                            Wrt::Price(j) => g.push((b.demands[j].price_var.index(), v)),
                        });
                    push(&mut jac, row, g);
                }
            }
            // The cross-price derivatives: rank-one terms, never an n × n block.
            if let Some(j) = jac.as_deref_mut() {
                for t in 0..c.form.rank_one_terms() {
                    let u = b.demands.iter().enumerate().filter_map(|(k, d)| {
                        let row = d.price_var;
                        (c.form.benchmark_quantity(k) != 0.0 && active[row]).then(|| {
                            let u = c.form.rank_one_u(&s.demand, t, k, -1.0) / scale[row];
                            (row.index(), u)
                        })
                    });
                    let v =
                        b.demands.iter().enumerate().map(|(k, d)| {
                            (d.price_var.index(), c.form.rank_one_v(&s.demand, t, k))
                        });
                    j.add_rank_one(u, v);
                }
            }
        }
        {
            let ctx = FuncCtx::new(*self, x, st);
            let layout = self.structure.layout();
            for (a, aux) in self.model().auxiliaries.iter().enumerate() {
                let row = layout.auxiliary(crate::ids::AuxId::new(a));
                let what = || format!("constraint of {} ({})", aux.name, aux.site);
                let v = if grad {
                    aux.constraint.eval_grad(&ctx, 1.0, Some(g))
                } else {
                    aux.constraint.eval(&ctx)
                };
                f[row.index()] = v.map_err(|error| EvaluationError::Expression {
                    what: what(),
                    error,
                })?;
                if grad {
                    push(&mut jac, row, g);
                }
            }
        }
        for (i, v) in f.iter_mut().enumerate() {
            if !active[i] {
                *v = 0.0;
            } else {
                *v /= scale[i];
            }
            if !v.is_finite() {
                return Err(EvaluationError::NonFinite {
                    what: self.structure.equation_name(VarId::new(i)),
                    value: *v,
                });
            }
        }
        Ok(())
    }

    /// Evaluates an expression (target, indicator, constraint) at `x` with its point state
    /// already computed.
    pub fn eval_expr_at(&self, x: &[f64], st: &PointState, e: &Expr) -> Result<f64, EvalError> {
        e.eval(&FuncCtx::new(*self, x, st))
    }

    /// Every indicator of the model at `x` (its point state already computed), in declaration
    /// order. One context serves them all, so an indicator that later ones use is evaluated
    /// once, not once per use (the flagship's indicators build on each other).
    pub fn indicators_at(&self, x: &[f64], st: &PointState) -> Vec<Result<f64, EvalError>> {
        let ctx = FuncCtx::new(*self, x, st);
        (0..self.model().indicators.len())
            .map(|i| ctx.indicator(i))
            .collect()
    }

    /// Evaluates an expression of a dynamic path (an update) at `x`, with `t` the period and
    /// `year` its year.
    pub fn eval_expr_in_period(
        &self,
        x: &[f64],
        st: &PointState,
        e: &Expr,
        t: usize,
        year: f64,
    ) -> Result<f64, EvalError> {
        let mut ctx = FuncCtx::new(*self, x, st);
        ctx.time = Some((t as f64, year));
        e.eval(&ctx)
    }

    /// Variable bounds: S ≥ 0, P ≥ 0, M free, auxiliaries as declared.
    pub fn bounds(&self) -> Result<Bounds, EvalError> {
        let n = self.dim();
        let layout = self.structure.layout();
        let params = self.coef.params();
        let mut lower = vec![0.0; n];
        let mut upper = vec![f64::INFINITY; n];
        for b in &self.structure.consumers {
            lower[b.var.index()] = f64::NEG_INFINITY;
        }
        for (a, aux) in self.model().auxiliaries.iter().enumerate() {
            let v = layout.auxiliary(crate::ids::AuxId::new(a)).index();
            lower[v] = crate::calibrate::eval_param(&aux.lower, params)?;
            upper[v] = crate::calibrate::eval_param(&aux.upper, params)?;
        }
        Ok(Bounds { lower, upper })
    }

    /// The benchmark point: activities and prices at `start`, auxiliaries at their start,
    /// incomes at endowment value plus tax revenue there.
    pub(crate) fn benchmark_point(
        &self,
        ws: &mut EvalWorkspace,
    ) -> Result<Vec<f64>, crate::calibrate::CalibrationError> {
        use crate::calibrate::{eval_param, CalibrationError};
        let m = self.model();
        let layout = self.structure.layout();
        let params = self.coef.params();
        let mut x = vec![0.0; self.dim()];
        let value = |e: &Expr, field: String| {
            eval_param(e, params).map_err(|error| CalibrationError::Expression { field, error })
        };
        for (i, s) in m.sectors.iter().enumerate() {
            x[layout.sector(SectorId::new(i)).index()] =
                value(&s.start, format!("start.{}", s.name))?;
        }
        for (i, c) in m.commodities.iter().enumerate() {
            x[layout.commodity(crate::ids::CommodityId::new(i)).index()] =
                value(&c.start, format!("start.{}", c.name))?;
        }
        for (i, a) in m.auxiliaries.iter().enumerate() {
            x[layout.auxiliary(crate::ids::AuxId::new(i)).index()] =
                value(&a.start, format!("auxiliary.{}.start", a.name))?;
        }
        self.settle_incomes(&mut x, ws)?;
        Ok(x)
    }

    /// Sets every income to its endowment value plus tax revenue at the point (iterating, since
    /// endowments and tax rates may themselves depend on incomes).
    pub fn settle_incomes(
        &self,
        x: &mut [f64],
        ws: &mut EvalWorkspace,
    ) -> Result<(), EvaluationError> {
        for _ in 0..100 {
            self.point_into(x, false, &mut ws.point)?;
            let st = &ws.point;
            let mut change: f64 = 0.0;
            for (h, b) in self.structure.consumers.iter().enumerate() {
                let m = st.consumers[h].endowment_value + st.consumers[h].revenue;
                change = change.max((m - x[b.var]).abs());
                x[b.var.index()] = m;
            }
            if change <= 1e-14 * (1.0 + x.iter().fold(0.0f64, |a, v| a.max(v.abs()))) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Function scales at a point (the scenario's benchmark point) and, per consumer, the price
    /// index and subsistence cost there (the reference of `ev`).
    pub(crate) fn scales_at(
        &self,
        x0: &[f64],
        ws: &mut EvalWorkspace,
    ) -> Result<ScalesAndReferences, EvaluationError> {
        self.point_into(x0, false, &mut ws.point)?;
        let st = &ws.point;
        let mut scale = vec![1.0; self.dim()];
        for (si, b) in self.structure.sectors.iter().enumerate() {
            let s = &st.sectors[si];
            scale[b.var.index()] = s.cost.max(s.revenue).max(1.0);
        }
        for b in &self.structure.consumers {
            scale[b.var.index()] = x0[b.var].abs().max(1.0);
        }
        let inc = self.structure.incidence();
        let layout = self.structure.layout();
        // Σ |level·quantity| over each commodity's netputs, in one pass over the sectors: per
        // commodity the terms come in the order of its (sector, leaf) list, so the sums are
        // those of summing that list.
        let mut netputs_of = vec![0.0f64; self.model().commodities.len()];
        for (si, b) in self.structure.sectors.iter().enumerate() {
            let level = x0[b.var];
            st.sectors[si].each_quantity(&self.coef.sectors[si], |l, _, q| {
                netputs_of[b.leaves[l].commodity] += (level * q).abs();
            });
        }
        for c in 0..self.model().commodities.len() {
            let netputs = netputs_of[c];
            let demands: f64 = inc.demands[c]
                .iter()
                .map(|&(h, k)| st.consumers[h].demand.demand[k].abs())
                .sum();
            let endowments: f64 = inc.endowments[c]
                .iter()
                .map(|&(h, k)| st.consumers[h].endowment[k].abs())
                .sum();
            let f = netputs + demands + endowments;
            scale[layout.commodity(crate::ids::CommodityId::new(c)).index()] = (0.5 * f).max(1.0);
        }
        let refs = self
            .structure
            .consumers
            .iter()
            .enumerate()
            .map(|(h, b)| {
                let prices: Vec<f64> = b.demands.iter().map(|d| x0[d.price_var]).collect();
                (
                    st.consumers[h].demand.price_index,
                    self.coef.consumers[h].form.subsistence_cost(&prices),
                )
            })
            .collect();
        Ok((scale, refs))
    }
}

/// Context of auxiliary constraints, targets and indicators: parameters, variables and the
/// contract's functions at the current point.
struct FuncCtx<'a> {
    sys: System<'a>,
    x: &'a [f64],
    st: &'a PointState,
    /// Indicator values computed so far at this point: indicators form a DAG (each may use
    /// earlier ones several times), evaluated once each, never expanded. Empty (and never
    /// allocated) where no indicator is used, as in the constraints of the Newton loop.
    indicators: std::cell::RefCell<Vec<Option<Result<f64, EvalError>>>>,
    /// The period and year along a dynamic path (updates only).
    time: Option<(f64, f64)>,
}

impl<'a> FuncCtx<'a> {
    fn new(sys: System<'a>, x: &'a [f64], st: &'a PointState) -> Self {
        FuncCtx {
            sys,
            x,
            st,
            indicators: std::cell::RefCell::new(Vec::new()),
            time: None,
        }
    }
}

impl EvalContext for FuncCtx<'_> {
    fn param(&self, i: usize) -> f64 {
        self.sys.coef.params()[i]
    }
    fn var(&self, v: Var) -> f64 {
        self.x[self.var_index(v)]
    }
    fn var_index(&self, v: Var) -> usize {
        self.sys.structure.layout().index_of(v).index()
    }
    fn indicator(&self, i: usize) -> Result<f64, EvalError> {
        if let Some(Some(known)) = self.indicators.borrow().get(i) {
            return known.clone();
        }
        // Indicators refer only to earlier ones, so this recursion is as deep as the chain
        // and each indicator is evaluated once.
        let value = self.sys.model().indicators[i].expr.eval(self);
        let mut cache = self.indicators.borrow_mut();
        if cache.len() <= i {
            cache.resize(i + 1, None);
        }
        cache[i] = Some(value.clone());
        value
    }
    fn time(&self, which: crate::expr::Time) -> Result<f64, EvalError> {
        match (self.time, which) {
            (Some((t, _)), crate::expr::Time::Period) => Ok(t),
            (Some((_, year)), crate::expr::Time::Year) => Ok(year),
            (None, _) => Err(EvalError::NoTime),
        }
    }
    fn func(&self, f: &Func, scale: f64, mut grad: Option<&mut Grad>) -> Result<f64, EvalError> {
        let sys = self.sys;
        match *f {
            Func::Demand {
                sector,
                commodity,
                nest,
            }
            | Func::Supply {
                sector,
                commodity,
                nest,
            } => {
                let output = matches!(f, Func::Supply { .. });
                let b = &sys.structure.sectors[sector];
                let st = &self.st.sectors[sector];
                let mut v = 0.0;
                let mut no_derivatives = false;
                st.each_quantity(&sys.coef.sectors[sector], |l, slot, q| {
                    let leaf = &b.leaves[l];
                    if leaf.commodity.index() == commodity
                        && leaf.output == output
                        && nest.is_none_or(|n| n == leaf.nest as usize)
                    {
                        v += q;
                        match (grad.as_deref_mut(), slot) {
                            // A run's leaf responds to no price.
                            (Some(_), _) if !st.has_grad => no_derivatives = true,
                            (Some(g), Some(q)) => sys.leaf_grad(sector, st, (l, q), scale, g),
                            _ => {}
                        }
                    }
                });
                if no_derivatives {
                    return Err(EvalError::NoDerivatives);
                }
                Ok(v)
            }
            Func::Final {
                consumer,
                commodity,
            } => {
                let b = &sys.structure.consumers[consumer];
                let st = &self.st.consumers[consumer];
                let mut v = 0.0;
                for (k, d) in b.demands.iter().enumerate() {
                    if d.commodity.index() == commodity {
                        v += st.demand.demand[k];
                        if let Some(g) = grad.as_deref_mut() {
                            sys.demand_grad(consumer, st, k, scale, g);
                        }
                    }
                }
                Ok(v)
            }
            Func::Endowment {
                consumer,
                commodity,
            } => {
                let b = &sys.structure.consumers[consumer];
                let st = &self.st.consumers[consumer];
                let mut v = 0.0;
                for (k, e) in b.endowments.iter().enumerate() {
                    if e.commodity.index() == commodity {
                        v += st.endowment[k];
                        if let Some(g) = grad.as_deref_mut() {
                            g.extend(st.endowment_grad_of(k).iter().map(|&(i, d)| (i, scale * d)));
                        }
                    }
                }
                Ok(v)
            }
            Func::Revenue { consumer } => {
                if let Some(g) = grad.as_deref_mut() {
                    for &(si, l, k) in &sys.structure.incidence().taxes[consumer] {
                        sys.tax_revenue_grad(
                            si.index(),
                            &self.st.sectors[si],
                            self.x,
                            l,
                            k,
                            scale,
                            g,
                        );
                    }
                }
                Ok(self.st.consumers[consumer].revenue)
            }
            Func::Welfare { consumer } => {
                let st = &self.st.consumers[consumer];
                if let Some(g) = grad {
                    sys.welfare_grad(consumer, st, scale, g);
                }
                Ok(st.demand.welfare)
            }
            Func::Ev { consumer } => {
                let st = &self.st.consumers[consumer];
                let c = &sys.coef.consumers[consumer];
                if let Some(g) = grad {
                    sys.welfare_grad(consumer, st, scale * c.form.welfare_price(c.e_ref), g);
                }
                Ok(sys.ev(ConsumerId::new(consumer), self.st))
            }
        }
    }
}
