//! Calibration: [`Structure`] + a parameter vector → [`Coefficients`].
//!
//! Share parameters are never stored in the file: they are the value weights `q = Q·p̄` of the
//! benchmark quantities at the reference prices, so that the benchmark is an equilibrium at the
//! given prices (`docs/equations.md`). Calibration evaluates every quantity, reference price,
//! elasticity and subsistence level for one parameter vector, decides pruning for it (zero
//! flows are switched off so they can never produce 0/0; sectors without flows lose their
//! zero-profit condition, commodities without flows their market), builds the benchmark point
//! and the function scales. A scenario is calibrated on its own parameters: the contract fixes
//! calibration within a scenario, not across scenarios.

use crate::compile::forms::ces_demand::CesDemand;
use crate::compile::forms::demand::DemandForm;
use crate::compile::forms::stone_geary::StoneGeary;
use crate::compile::{EvalWorkspace, EvaluationError, Structure};
use crate::expr::{EvalContext, EvalError, Expr, Func, Grad};

/// What was pruned, in model order, with a reason a modeller can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub what: String,
}

/// Why a parameter vector does not calibrate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CalibrationError {
    /// An expression could not be evaluated (division by zero, ...).
    #[error("{field}: {error}")]
    Expression { field: String, error: EvalError },
    /// A value outside its domain: a negative quantity, a non-positive reference price, a
    /// negative elasticity, a subsistence level at or above its benchmark quantity.
    #[error("{field}: {message}")]
    Value { field: String, message: String },
    /// The benchmark point could not be evaluated.
    #[error("benchmark point: {0}")]
    Evaluation(#[from] EvaluationError),
}

pub(crate) struct ParamOnly<'a>(pub &'a [f64]);
impl EvalContext for ParamOnly<'_> {
    fn param(&self, i: usize) -> f64 {
        self.0[i]
    }
    fn var(&self, _v: crate::ids::Var) -> f64 {
        f64::NAN
    }
    fn var_index(&self, _v: crate::ids::Var) -> usize {
        0
    }
    fn func(&self, _f: &Func, _s: f64, _g: Option<&mut Grad>) -> Result<f64, EvalError> {
        Err(EvalError::NoFunctions)
    }
}

/// Evaluates a parameter-only expression.
pub fn eval_param(e: &Expr, params: &[f64]) -> Result<f64, EvalError> {
    e.eval(&ParamOnly(params))
}

/// Numbers of one sector for one parameter vector.
#[derive(Debug, Clone, Default)]
pub(crate) struct SectorCoef {
    /// Per leaf: benchmark quantity Q; reference price p̄ per leaf outside runs (at its
    /// point-state slot, see `node_shift`: only calibration reads a run's). The quantities are
    /// shared (an `Arc`) with the Jacobian's runs, whose products read them in place: at
    /// scale the input-output block is then in memory once, and the evaluation and the
    /// products stream the same bytes.
    pub quantity: std::sync::Arc<[f64]>,
    pub price: Vec<f64>,
    /// Per leaf: does it carry flow (Q ≠ 0)?
    pub leaf_active: Vec<bool>,
    /// Per leaf: share in its parent node.
    pub leaf_share: Vec<f64>,
    /// Per node: value weight q_n, share θ_n in its parent, and σ (−η for output nests).
    pub node_weight: Vec<f64>,
    pub node_share: Vec<f64>,
    pub node_sigma: Vec<f64>,
    /// Per node: does some active leaf lie below it?
    pub node_active: Vec<bool>,
    /// Per leaf, compact copies of what the evaluation reads for every leaf at every point
    /// (so that it streams small arrays rather than the structure's leaves): the layout index
    /// of its price, whether it is an output, whether it is taxed, and the position on its path
    /// of the highest node with σ ≠ 0 ([`NO_TOP`] when its quantity responds to no price, or
    /// it is inactive). `leaf_top` per leaf outside runs, at its point-state slot (a run's
    /// leaves respond to no price).
    pub leaf_price: Vec<u32>,
    pub leaf_output: Vec<bool>,
    pub leaf_top: Vec<u32>,
    /// Per leaf: 1/p̄; per leaf outside runs (at its slot: runs are untaxed) its rank among
    /// the sector's taxed leaves ([`UNTAXED`] if it has no tax: its price index gradient is
    /// then just 1/p̄ on its price).
    pub inv_price: Vec<f64>,
    pub taxed_rank: Vec<u32>,
    /// Per leaf i outside runs, at its slot q: the row of ∂x_i/∂π_l starts at `dx_start[q]`
    /// of the flat derivative buffer and covers the leaves from leaf `dx_first[q]` (the leaves
    /// of its top responsive node, none of them in a run, so at consecutive slots too); empty
    /// for a leaf that responds to no price. Offsets depend on σ and pruning only.
    /// Both `u32` like the other per-leaf arrays: 8 bytes a leaf instead of 16 (200 MB at
    /// N = 5000 for a model over sets); a sector whose derivative rows would pass `u32::MAX`
    /// entries (32 GB of them) is refused at calibration.
    pub dx_start: Vec<u32>,
    pub dx_first: Vec<u32>,
    /// Per node: the range of its direct leaves (they are contiguous, before its child nests'
    /// leaves), and whether the derivatives need its value V_n (σ ≠ 0 there or at its parent).
    pub node_direct: Vec<(usize, usize)>,
    pub node_valued: Vec<bool>,
    /// Per node: the layout index of the first price when the node is a run ([`NO_RUN`]
    /// otherwise): fixed proportions here and at every node above (so its quantities are the
    /// benchmark quantities at any prices), untaxed direct leaves over consecutive prices whose
    /// markets are all active, as an input-output table's column is. The solver's evaluation
    /// treats a run as a block: no per-leaf state, Jacobian runs without indices.
    pub node_run: Vec<u32>,
    /// Per node: the leaves of runs before its direct leaves. The point state
    /// (`compile::SectorState`: π, quantity, π^(−σ)) keeps the leaves outside runs only, in
    /// order, so leaf l of node k sits at `l − node_shift[k]`, as does every leaf below a node
    /// with no run under it (a run's quantities are its benchmark quantities at any prices,
    /// its π never read): an input-output block's 25 million leaves at N = 5000 hold no point
    /// state (600 MB).
    pub node_shift: Vec<u32>,
    /// Leaves outside runs: the length of the point state's per-leaf arrays.
    pub state_len: usize,
    /// Per tax (the sector's flat list): its rate when it depends on parameters only (so the
    /// evaluation never walks its expression), None when it depends on the point.
    pub tax_const: Vec<Option<f64>>,
}

/// `SectorCoef::node_run` of a node that is not a run.
pub(crate) const NO_RUN: u32 = u32::MAX;
/// Fewest direct leaves that make a run.
const RUN_MIN: usize = 4;

/// `SectorCoef::leaf_top` of a leaf whose quantity responds to no price.
pub(crate) const NO_TOP: u32 = u32::MAX;
/// `SectorCoef::taxed_rank` of an untaxed leaf.
pub(crate) const UNTAXED: u32 = u32::MAX;

/// Numbers of one consumer for one parameter vector.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerCoef {
    pub form: DemandForm,
    pub endowment_active: Vec<bool>,
    /// Per endowment: its quantity when it depends on parameters only, None otherwise.
    pub endowment_const: Vec<Option<f64>>,
    /// Price index and subsistence cost at the scenario's benchmark point (the reference of
    /// `ev`).
    pub e_ref: f64,
    pub fixed_ref: f64,
}

/// Everything numeric about a model at one parameter vector; see the module documentation.
#[derive(Debug, Clone)]
pub struct Coefficients {
    params: Vec<f64>,
    pub(crate) sectors: Vec<SectorCoef>,
    pub(crate) consumers: Vec<ConsumerCoef>,
    /// Per variable: false when pruning removed its function (the variable is held at start).
    pub(crate) active: Vec<bool>,
    pruned: Vec<Pruned>,
    /// Divisor of each function, and its reciprocal (the Jacobian's rows are multiplied).
    pub(crate) scale: Vec<f64>,
    pub(crate) inv_scale: Vec<f64>,
    /// The benchmark point with these parameters (incomes settled).
    start: Vec<f64>,
    /// Benchmark income of each consumer that equivalent variations are measured from, when it
    /// is not the compiled model's (`None`): the benchmark's under the same overrides (`--set`, a
    /// sensitivity draw), which can move benchmark incomes (a labour-supply elasticity sizes the
    /// leisure endowment), while the scenario's own parameters must not move it.
    pub(crate) reference_income: Option<Vec<f64>>,
}

impl Coefficients {
    pub fn params(&self) -> &[f64] {
        &self.params
    }
    /// Pruned flows, sectors and markets, in model order.
    pub fn pruned(&self) -> &[Pruned] {
        &self.pruned
    }
    /// Does the function paired with `v` exist with these parameters?
    pub fn is_active(&self, v: crate::ids::VarId) -> bool {
        self.active[v]
    }
    /// Variables without a paired function (held at their start values).
    pub fn inactive(&self) -> Vec<bool> {
        self.active.iter().map(|a| !a).collect()
    }
    /// Scale of the function paired with `v`: zero profit by max(1, larger of unit cost and
    /// revenue), market clearance by max(1, half the sum of absolute flows), income balance by
    /// max(1, |income|), constraints by 1, all at the benchmark point.
    pub fn scale_of(&self, v: crate::ids::VarId) -> f64 {
        self.scale[v]
    }
    /// The benchmark point: activities, prices and auxiliaries at `start`, incomes at
    /// endowment value plus tax revenue there.
    pub fn start(&self) -> &[f64] {
        &self.start
    }
    /// Each consumer's income at this calibration's benchmark point.
    pub fn benchmark_incomes(&self, structure: &Structure) -> Vec<f64> {
        structure
            .consumers
            .iter()
            .map(|b| self.start()[b.var])
            .collect()
    }
    /// These coefficients with equivalent variations measured from `incomes` (the benchmark's
    /// incomes under the same overrides) instead of the compiled model's benchmark incomes.
    pub fn with_reference_income(mut self, incomes: Vec<f64>) -> Self {
        self.reference_income = Some(incomes);
        self
    }
}

/// Marks the runs of a sector (`SectorCoef::node_run`) and places the
/// other leaves in the point state (`SectorCoef::node_shift`, `SectorCoef::state_len`).
fn find_runs(b: &crate::compile::SectorBlock, c: &mut SectorCoef, active: &[bool]) {
    let nn = b.nodes.len();
    c.node_run = vec![NO_RUN; nn];
    c.node_shift = vec![0; nn];
    // Nodes in preorder hold their direct leaves in order.
    let mut in_runs = 0usize;
    // Fixed proportions all the way up: nodes are in preorder, parents first.
    let mut leontief = vec![false; nn];
    for k in 0..nn {
        leontief[k] = c.node_sigma[k] == 0.0 && b.nodes[k].parent.is_none_or(|p| leontief[p]);
        let (a, z) = c.node_direct[k];
        c.node_shift[k] = in_runs as u32;
        let first = c.leaf_price.get(a).copied().unwrap_or(0);
        let run = leontief[k]
            && c.node_active[k]
            && z - a >= RUN_MIN
            && (a..z).all(|l| {
                b.leaves[l].taxes.is_empty()
                    && c.leaf_price[l] == first + (l - a) as u32
                    && active[c.leaf_price[l] as usize]
            });
        if run {
            c.node_run[k] = first;
            in_runs += z - a;
        }
    }
    c.state_len = b.leaves.len() - in_runs;
}

/// What only the leaves outside runs read, built at their point-state slots once the runs are
/// known (`find_runs`): the taxed rank, the top responsive node and the derivative offsets;
/// the reference prices are moved to the slots. Built here rather than per leaf and then
/// compacted, so that calibration never holds (nor frees, to be kept by the allocator) 24
/// bytes a leaf of an input-output block: 600 MB at N = 5000.
fn place_outside_runs(
    b: &crate::compile::SectorBlock,
    c: &mut SectorCoef,
    name: &str,
) -> Result<(), CalibrationError> {
    if c.state_len < b.leaves.len() {
        let mut price = Vec::with_capacity(c.state_len);
        price.extend(c.leaves_outside_runs().map(|(l, _)| c.price[l]));
        c.price = price;
    }
    let too_many = || CalibrationError::Value {
        field: format!("sectors.{name}"),
        message: format!(
            "its nests need more than {} price derivatives at a point",
            u32::MAX
        ),
    };
    let ns = c.state_len;
    let (mut taxed_rank, mut leaf_top) = (Vec::with_capacity(ns), Vec::with_capacity(ns));
    let (mut dx_start, mut dx_first) = (Vec::with_capacity(ns + 1), Vec::with_capacity(ns));
    let (mut taxed, mut offset) = (0u32, 0usize);
    for (i, _) in c.leaves_outside_runs() {
        let leaf = &b.leaves[i];
        taxed_rank.push(if leaf.taxes.is_empty() {
            UNTAXED
        } else {
            taxed += 1;
            taxed - 1
        });
        let top = match leaf.path.iter().rposition(|&k| c.node_sigma[k] != 0.0) {
            Some(t) if c.leaf_active[i] => t as u32,
            _ => NO_TOP,
        };
        leaf_top.push(top);
        dx_start.push(u32::try_from(offset).map_err(|_| too_many())?);
        if top == NO_TOP {
            dx_first.push(u32::try_from(i).map_err(|_| too_many())?);
        } else {
            let (start, end) = b.nodes[leaf.path[top as usize]].leaves;
            dx_first.push(u32::try_from(start).map_err(|_| too_many())?);
            offset += end - start;
        }
    }
    dx_start.push(u32::try_from(offset).map_err(|_| too_many())?);
    (c.taxed_rank, c.leaf_top) = (taxed_rank, leaf_top);
    (c.dx_start, c.dx_first) = (dx_start, dx_first);
    Ok(())
}

impl SectorCoef {
    /// The leaves outside runs, in order (nodes in preorder hold their direct leaves in
    /// order), each with its slot in the point state: loops over them skip the input-output
    /// blocks' leaves without visiting each.
    pub(crate) fn leaves_outside_runs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.node_run.len())
            .filter(|&k| self.node_run[k] == NO_RUN)
            .flat_map(|k| {
                let ((a, z), shift) = (self.node_direct[k], self.node_shift[k] as usize);
                (a..z).map(move |l| (l, l - shift))
            })
    }
}

// `!(q >= 0.0)` on purpose: it rejects NaN as well as negative values.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
/// Calibrates a structure to a parameter vector.
pub fn calibrate(structure: &Structure, params: &[f64]) -> Result<Coefficients, CalibrationError> {
    let m = structure.model();
    let layout = structure.layout();
    let value = |e: &Expr, field: &dyn Fn() -> String| -> Result<f64, CalibrationError> {
        eval_param(e, params).map_err(|error| CalibrationError::Expression {
            field: field(),
            error,
        })
    };
    let bad = |field: String, message: String| CalibrationError::Value { field, message };
    let mut pruned = Vec::new();
    let mut active = vec![true; layout.dim()];
    let mut market = vec![false; m.commodities.len()];
    let mut sectors = Vec::with_capacity(structure.sectors.len());
    for (si, (b, s)) in structure.sectors.iter().zip(&m.sectors).enumerate() {
        let name = &s.name;
        let nl = b.leaves.len();
        let mut quantity = Vec::with_capacity(nl);
        let mut c = SectorCoef {
            price: Vec::with_capacity(nl),
            leaf_active: Vec::with_capacity(nl),
            ..Default::default()
        };
        // Netput activity in file order (a leaf per netput), for the pruning messages.
        let mut netput_active = vec![false; s.netputs.len()];
        for l in &b.leaves {
            let cname = &m.commodities[l.commodity.index()].name;
            let np = &s.netputs[l.netput];
            let field = || np.site.part("quantity");
            let price_field = || np.site.part("price");
            // Most quantities and prices are numbers (a model over sets has millions): read
            // without evaluating.
            let q = match np.quantity.number() {
                Some(q) => q,
                None => value(&s.expr(np.quantity), &field)?,
            };
            let p = match np.price.number() {
                Some(p) => p,
                None => value(&s.expr(np.price), &price_field)?,
            };
            if !(q >= 0.0) || !q.is_finite() {
                return Err(bad(field(), format!("netput quantity of {cname} is {q}")));
            }
            if !(p > 0.0) || !p.is_finite() {
                return Err(bad(
                    price_field(),
                    format!("reference price of {cname} is {p}"),
                ));
            }
            quantity.push(q);
            c.price.push(p);
            c.leaf_active.push(q != 0.0);
            netput_active[l.netput] = q != 0.0;
            if q != 0.0 {
                market[l.commodity.index()] = true;
            }
        }
        c.quantity = quantity.into();
        let nn = b.nodes.len();
        c.node_weight = vec![0.0; nn];
        c.node_share = vec![0.0; nn];
        c.node_sigma = vec![0.0; nn];
        c.node_active = vec![false; nn];
        c.leaf_share = vec![0.0; nl];
        // Weights bottom-up: nodes are in preorder, so children come after parents.
        for k in (0..nn).rev() {
            let node = &b.nodes[k];
            let w: f64 = node
                .direct_leaves
                .clone()
                .map(|l| c.quantity[l] * c.price[l])
                .sum::<f64>()
                + node.nodes.iter().map(|&j| c.node_weight[j]).sum::<f64>();
            c.node_weight[k] = w;
            c.node_active[k] = node.direct_leaves.clone().any(|l| c.leaf_active[l])
                || node.nodes.iter().any(|&j| c.node_active[j]);
            let e = value(&node.elasticity, &|| format!("sectors.{name}.elasticity"))?;
            if !(e >= 0.0) || !e.is_finite() {
                return Err(bad(
                    format!("sectors.{name}.elasticity"),
                    format!("elasticity is {e}"),
                ));
            }
            c.node_sigma[k] = if node.output { -e } else { e };
        }
        for k in 0..nn {
            let node = &b.nodes[k];
            let w = c.node_weight[k];
            for l in node.direct_leaves.clone() {
                c.leaf_share[l] = if w > 0.0 {
                    c.quantity[l] * c.price[l] / w
                } else {
                    0.0
                };
            }
            for &j in &node.nodes {
                c.node_share[j] = if w > 0.0 { c.node_weight[j] / w } else { 0.0 };
            }
        }
        for (k, np) in s.netputs.iter().enumerate() {
            if !netput_active[k] {
                let side = if np.output { "output" } else { "input" };
                pruned.push(Pruned {
                    what: format!(
                        "{name}: {side} {} (nest {}): zero quantity",
                        m.commodities[np.commodity].name,
                        s.nests[np.nest()].name
                    ),
                });
            }
        }
        let mut node_of = vec![None; s.nests.len()];
        for (k, node) in b.nodes.iter().enumerate() {
            node_of[node.nest] = Some(k);
        }
        for (j, n) in s.nests.iter().enumerate().skip(2) {
            let on = node_of[j].is_some_and(|k| c.node_active[k]);
            if !on {
                pruned.push(Pruned {
                    what: format!("{name}: nest {} has no flows", n.name),
                });
            }
        }
        c.leaf_price = b
            .leaves
            .iter()
            .map(|l| l.price_var.index() as u32)
            .collect();
        c.leaf_output = b.leaves.iter().map(|l| l.output).collect();
        c.inv_price = c.price.iter().map(|p| 1.0 / p).collect();
        c.node_direct = b
            .nodes
            .iter()
            .map(|node| (node.direct_leaves.start, node.direct_leaves.end))
            .collect();
        // Parameter-only rates once here (one that fails to evaluate is left to the point's
        // evaluation, which reports it where it always has).
        c.tax_const = b
            .leaves
            .iter()
            .flat_map(|l| &l.taxes)
            .map(|t| {
                t.rate
                    .is_parameter_only()
                    .then(|| eval_param(&t.rate, params).ok())
                    .flatten()
            })
            .collect();
        c.node_valued = b
            .nodes
            .iter()
            .enumerate()
            .map(|(k, node)| {
                c.node_sigma[k] != 0.0 || node.parent.is_some_and(|p| c.node_sigma[p] != 0.0)
            })
            .collect();
        if !c.leaf_active.iter().any(|a| *a) {
            active[layout.sector(crate::ids::SectorId::new(si))] = false;
            pruned.push(Pruned {
                what: format!("{name}: no netputs: no zero-profit condition, level held at start"),
            });
        }
        sectors.push(c);
    }
    let mut consumers = Vec::with_capacity(structure.consumers.len());
    for (b, h) in structure.consumers.iter().zip(&m.consumers) {
        let name = &h.name;
        let (mut q, mut p, mut g) = (Vec::new(), Vec::new(), Vec::new());
        for (k, d) in b.demands.iter().enumerate() {
            let cname = &m.commodities[d.commodity.index()].name;
            let site = &h.demands[k].site;
            let field = || site.to_string();
            let qk = value(&d.quantity, &field)?;
            let pk = value(&d.price, &field)?;
            if !(qk >= 0.0) || !(pk > 0.0) || !qk.is_finite() || !pk.is_finite() {
                return Err(bad(
                    field(),
                    format!("final demand for {cname} has quantity {qk} and price {pk}"),
                ));
            }
            if let Some(s) = &d.subsistence {
                let gk = value(s, &field)?;
                if !(gk >= 0.0) || !gk.is_finite() || (qk > 0.0 && gk >= qk) {
                    return Err(bad(
                        field(),
                        format!(
                            "subsistence quantity of {cname} is {gk}: it must lie in [0, {qk})"
                        ),
                    ));
                }
                g.push(gk);
            } else {
                g.push(0.0);
            }
            if qk == 0.0 {
                pruned.push(Pruned {
                    what: format!("{name}: final demand for {cname}: zero quantity"),
                });
            } else {
                market[d.commodity.index()] = true;
            }
            q.push(qk);
            p.push(pk);
        }
        let sigma = value(&b.elasticity, &|| format!("consumers.{name}.elasticity"))?;
        if !(sigma >= 0.0) || !sigma.is_finite() {
            return Err(bad(
                format!("consumers.{name}.elasticity"),
                format!("demand elasticity is {sigma}"),
            ));
        }
        let form = if b.stone_geary {
            DemandForm::StoneGeary(StoneGeary::new(&q, p, g, sigma))
        } else {
            DemandForm::Ces(CesDemand::new(q, p, sigma))
        };
        let mut endowment_active = Vec::with_capacity(b.endowments.len());
        for e in &b.endowments {
            // An endowment that depends on variables always stays: it may become non-zero at
            // any point. One of parameters only is pruned when it is zero with these.
            let zero = e.quantity.is_parameter_only()
                && eval_param(&e.quantity, params).is_ok_and(|v| v == 0.0);
            if zero {
                pruned.push(Pruned {
                    what: format!(
                        "{name}: endowment of {}: zero quantity",
                        m.commodities[e.commodity.index()].name
                    ),
                });
            } else {
                market[e.commodity.index()] = true;
            }
            endowment_active.push(!zero);
        }
        let endowment_const = b
            .endowments
            .iter()
            .map(|e| {
                e.quantity
                    .is_parameter_only()
                    .then(|| eval_param(&e.quantity, params).ok())
                    .flatten()
            })
            .collect();
        consumers.push(ConsumerCoef {
            form,
            endowment_active,
            endowment_const,
            e_ref: 1.0,
            fixed_ref: 0.0,
        });
    }
    for (c, on) in market.iter().enumerate() {
        if !on {
            active[layout.commodity(crate::ids::CommodityId::new(c))] = false;
            pruned.push(Pruned {
                what: format!(
                    "{}: in no netput, demand or endowment: no market, price held at start",
                    m.commodities[c].name
                ),
            });
        }
    }
    for ((b, c), s) in structure
        .sectors
        .iter()
        .zip(sectors.iter_mut())
        .zip(&m.sectors)
    {
        find_runs(b, c, &active);
        place_outside_runs(b, c, &s.name)?;
    }
    let mut coef = Coefficients {
        params: params.to_vec(),
        sectors,
        consumers,
        active,
        pruned,
        scale: vec![1.0; layout.dim()],
        inv_scale: vec![1.0; layout.dim()],
        start: Vec::new(),
        reference_income: None,
    };
    let mut ws = EvalWorkspace::new(structure);
    let start = structure.with(&coef).benchmark_point(&mut ws)?;
    let (scale, refs) = structure.with(&coef).scales_at(&start, &mut ws)?;
    coef.inv_scale = scale.iter().map(|s| 1.0 / s).collect();
    coef.scale = scale;
    for (c, (e_ref, fixed_ref)) in coef.consumers.iter_mut().zip(refs) {
        c.e_ref = e_ref;
        c.fixed_ref = fixed_ref;
    }
    coef.start = start;
    Ok(coef)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_fixed_proportion_untaxed_consecutive_blocks() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/leontief_runs.toml");
        let (structure, coef) = crate::build(&path).unwrap();
        let runs: Vec<(String, Vec<bool>)> = structure
            .model()
            .sectors
            .iter()
            .zip(&coef.sectors)
            .map(|(s, c)| {
                (
                    s.name.clone(),
                    c.node_run.iter().map(|&r| r != NO_RUN).collect(),
                )
            })
            .collect();
        // Nodes: input root, its nests, output root. Y1..Y4: the Leontief root over G1..G5
        // is a run, the CES value added and the single output are not; Y5 taxes G3: no run;
        // J: the fixed-proportion outputs G1..G4 are a run, its Cobb–Douglas inputs are not.
        for (name, r) in &runs {
            let want = match name.as_str() {
                "Y5" => vec![false, false, false],
                "J" => vec![false, true],
                _ => vec![true, false, false],
            };
            assert_eq!(r, &want, "{name}");
        }
        let y1 = &coef.sectors[0];
        // The point state keeps the leaves outside the run of five only, those of the nodes
        // after it shifted by five.
        assert_eq!(y1.state_len, structure.sectors[0].leaves.len() - 5);
        assert_eq!(y1.node_shift, [0, 5, 5]);
        let mut ws = EvalWorkspace::new(&structure);
        let system = structure.with(&coef);
        system
            .point_into(coef.start(), true, &mut ws.point)
            .unwrap();
        for (s, c) in ws.point.sectors.iter().zip(&coef.sectors) {
            assert_eq!((s.pi.len(), s.quantity.len()), (c.state_len, c.state_len));
        }
    }
}
