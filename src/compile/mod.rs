//! `CalibratedModel` → `EquationSystem`: the mixed complementarity problem.
//!
//! The structure (variable layout, nest trees with leaves in depth-first order, incidence of
//! commodities) is built once. A scenario only calls [`EquationSystem::set_parameters`], which
//! recomputes the numeric coefficients (benchmark quantities, reference prices, value weights,
//! elasticities) from the parameter vector: calibration is redone, the system is not recompiled.
//! Formulas: `docs/equations.md`.

mod eval;

use crate::calibrate::{eval_param, CalibratedModel, Pruned};
use crate::expr::{EvalError, Expr};
use crate::model::Model;

pub use eval::{ConsumerState, PointState, SectorState};

/// One leaf of a sector's nest trees: a netput.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub commodity: usize,
    pub output: bool,
    /// Model nest id of its parent (for `demand(S, C, NEST)`).
    pub nest: usize,
    /// Nodes from the parent (`path[0]`) up to the root (structure only, so built once).
    pub path: Vec<usize>,
    pub quantity: Expr,
    pub price: Expr,
    pub taxes: Vec<(usize, Expr)>,
}

/// A compiled nest: its leaves are the contiguous range `leaves.0..leaves.1`.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub parent: Option<usize>,
    pub elasticity: Expr,
    pub output: bool,
    /// Child nodes and child leaves.
    pub nodes: Vec<usize>,
    pub direct_leaves: Vec<usize>,
    pub leaves: (usize, usize),
}

#[derive(Debug, Clone)]
pub(crate) struct SectorBlock {
    pub var: usize,
    /// Nodes in preorder; the input root (if any) and the output root (if any) are roots.
    pub nodes: Vec<Node>,
    pub input_root: Option<usize>,
    pub output_root: Option<usize>,
    pub leaves: Vec<Leaf>,
}

#[derive(Debug, Clone)]
pub(crate) struct DemandLeaf {
    pub commodity: usize,
    pub quantity: Expr,
    pub price: Expr,
}

#[derive(Debug, Clone)]
pub(crate) struct ConsumerBlock {
    pub var: usize,
    pub elasticity: Expr,
    pub demands: Vec<DemandLeaf>,
    pub endowments: Vec<(usize, Expr)>,
}

/// Numbers of one sector for the current parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct SectorCoef {
    /// Per leaf: benchmark quantity Q and reference price p̄.
    pub quantity: Vec<f64>,
    pub price: Vec<f64>,
    /// Per node: value weight q_n, share θ_n in its parent, and σ (−η for output nests).
    pub node_weight: Vec<f64>,
    pub node_share: Vec<f64>,
    pub node_sigma: Vec<f64>,
    /// Per leaf: share in its parent node.
    pub leaf_share: Vec<f64>,
    /// Per node: is σ ≠ 0 here or at some ancestor? (Below a node where it is false, demands
    /// do not respond to prices within the node: Leontief.)
    pub responsive: Vec<bool>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerCoef {
    pub quantity: Vec<f64>,
    pub price: Vec<f64>,
    pub share: Vec<f64>,
    /// Q_H = Σ Q_d p̄_d.
    pub total: f64,
    pub sigma: f64,
}

/// The compiled complementarity problem of a model.
#[derive(Debug, Clone)]
pub struct EquationSystem {
    pub model: Model,
    pub pruned: Vec<Pruned>,
    pub(crate) sectors: Vec<SectorBlock>,
    pub(crate) consumers: Vec<ConsumerBlock>,
    /// Variables without a paired function (pruned sectors and commodities): held at start.
    pub inactive: Vec<bool>,
    params: Vec<f64>,
    pub(crate) sector_coef: Vec<SectorCoef>,
    pub(crate) consumer_coef: Vec<ConsumerCoef>,
    /// Divisor of each function (set by `set_scales`).
    pub(crate) scale: Vec<f64>,
    /// Scenario expenditure index at start prices, per consumer (for `ev`).
    pub(crate) e_bar: Vec<f64>,
    /// Benchmark income of the model as written, per consumer (for `ev`).
    pub(crate) m_bar: Vec<f64>,
    /// Which netputs were pruned at the benchmark: must stay zero in every scenario.
    pruned_quantities: Vec<(String, Expr)>,
    /// Incidence maps, built once from the structure.
    pub incidence: Incidence,
}

/// Who touches what: reverse maps from commodities and consumers to the leaves, final demands,
/// endowments and taxes that involve them, in layout order.
#[derive(Debug, Clone, Default)]
pub struct Incidence {
    /// Per commodity: (sector, leaf) of every netput of it.
    pub leaves: Vec<Vec<(usize, usize)>>,
    /// Per commodity: (consumer, k) of every final demand for it.
    pub demands: Vec<Vec<(usize, usize)>>,
    /// Per commodity: (consumer, k) of every endowment of it.
    pub endowments: Vec<Vec<(usize, usize)>>,
    /// Per consumer: (sector, leaf, k) of every tax paid to it.
    pub taxes: Vec<Vec<(usize, usize, usize)>>,
}

impl Incidence {
    fn build(nc: usize, nh: usize, sectors: &[SectorBlock], consumers: &[ConsumerBlock]) -> Self {
        let mut inc = Incidence {
            leaves: vec![Vec::new(); nc],
            demands: vec![Vec::new(); nc],
            endowments: vec![Vec::new(); nc],
            taxes: vec![Vec::new(); nh],
        };
        for (si, b) in sectors.iter().enumerate() {
            for (l, leaf) in b.leaves.iter().enumerate() {
                inc.leaves[leaf.commodity].push((si, l));
                for (k, (agent, _)) in leaf.taxes.iter().enumerate() {
                    inc.taxes[*agent].push((si, l, k));
                }
            }
        }
        for (h, b) in consumers.iter().enumerate() {
            for (k, d) in b.demands.iter().enumerate() {
                inc.demands[d.commodity].push((h, k));
            }
            for (k, (c, _)) in b.endowments.iter().enumerate() {
                inc.endowments[*c].push((h, k));
            }
        }
        inc
    }
}

/// Lower and upper bounds of every variable.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl EquationSystem {
    /// Compiles the structure and calibrates it to the model's own parameters.
    pub fn new(cal: &CalibratedModel) -> Result<EquationSystem, EvalError> {
        let model = cal.model.clone();
        let mut sectors = Vec::new();
        let mut pruned_quantities = Vec::new();
        let mut inactive = vec![false; model.n_vars()];
        for (si, s) in model.sectors.iter().enumerate() {
            let var = model.sector_var(si);
            if !cal.sector_active[si] {
                inactive[var] = true;
            }
            for (k, np) in s.netputs.iter().enumerate() {
                if !cal.netput_active[si][k] {
                    pruned_quantities
                        .push((format!("{}: netput {k}", s.name), np.quantity.clone()));
                }
            }
            let mut block = SectorBlock {
                var,
                nodes: Vec::new(),
                input_root: None,
                output_root: None,
                leaves: Vec::new(),
            };
            for root in [0usize, 1usize] {
                if cal.nest_active[si][root] {
                    let id = build_node(s, cal, si, root, None, &mut block);
                    if root == 0 {
                        block.input_root = Some(id);
                    } else {
                        block.output_root = Some(id);
                    }
                }
            }
            sectors.push(block);
        }
        let mut consumers = Vec::new();
        for (hi, h) in model.consumers.iter().enumerate() {
            let demands = h
                .demands
                .iter()
                .zip(&cal.demand_active[hi])
                .filter(|(_, a)| **a)
                .map(|(d, _)| DemandLeaf {
                    commodity: d.commodity,
                    quantity: d.quantity.clone(),
                    price: d.price.clone(),
                })
                .collect();
            let endowments = h
                .endowments
                .iter()
                .zip(&cal.endowment_active[hi])
                .filter(|(_, a)| **a)
                .map(|(e, _)| (e.commodity, e.quantity.clone()))
                .collect();
            consumers.push(ConsumerBlock {
                var: model.consumer_var(hi),
                elasticity: h.elasticity.clone(),
                demands,
                endowments,
            });
        }
        for (c, on) in cal.market_active.iter().enumerate() {
            if !on {
                inactive[model.commodity_var(c)] = true;
            }
        }
        let n = model.n_vars();
        let nh = model.consumers.len();
        let incidence = Incidence::build(model.commodities.len(), nh, &sectors, &consumers);
        let mut sys = EquationSystem {
            incidence,
            params: model.param_values(),
            model,
            pruned: cal.pruned.clone(),
            sectors,
            consumers,
            inactive,
            sector_coef: Vec::new(),
            consumer_coef: Vec::new(),
            scale: vec![1.0; n],
            e_bar: vec![1.0; nh],
            m_bar: vec![0.0; nh],
            pruned_quantities,
        };
        let p = sys.params.clone();
        sys.set_parameters(&p)?;
        let x0 = sys.benchmark_point()?;
        sys.m_bar = sys
            .model
            .consumers
            .iter()
            .enumerate()
            .map(|(h, _)| x0[sys.model.consumer_var(h)])
            .collect();
        Ok(sys)
    }

    pub fn params(&self) -> &[f64] {
        &self.params
    }

    pub fn dim(&self) -> usize {
        self.model.n_vars()
    }

    /// Recalibrates every coefficient to a parameter vector (a scenario's).
    // `!(q >= 0.0)` on purpose: it rejects NaN as well as negative values.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn set_parameters(&mut self, params: &[f64]) -> Result<(), EvalError> {
        let m = &self.model;
        for (what, q) in &self.pruned_quantities {
            let v = eval_param(q, params)?;
            if v != 0.0 {
                return Err(EvalError(format!(
                    "{what} was pruned at the benchmark (zero quantity) but is {v} with these parameters; give it a non-zero benchmark quantity"
                )));
            }
        }
        let mut sector_coef = Vec::with_capacity(self.sectors.len());
        for (si, b) in self.sectors.iter().enumerate() {
            let name = &m.sectors[si].name;
            let mut c = SectorCoef::default();
            for l in &b.leaves {
                let q = eval_param(&l.quantity, params)?;
                let p = eval_param(&l.price, params)?;
                if !(q >= 0.0) || !q.is_finite() {
                    return Err(EvalError(format!(
                        "{name}: netput quantity of {} is {q}",
                        m.commodities[l.commodity].name
                    )));
                }
                if !(p > 0.0) || !p.is_finite() {
                    return Err(EvalError(format!(
                        "{name}: reference price of {} is {p}",
                        m.commodities[l.commodity].name
                    )));
                }
                c.quantity.push(q);
                c.price.push(p);
            }
            let nn = b.nodes.len();
            c.node_weight = vec![0.0; nn];
            c.node_share = vec![0.0; nn];
            c.node_sigma = vec![0.0; nn];
            c.responsive = vec![false; nn];
            c.leaf_share = vec![0.0; b.leaves.len()];
            // Weights bottom-up: nodes are in preorder, so children come after parents.
            for k in (0..nn).rev() {
                let node = &b.nodes[k];
                let w: f64 = node
                    .direct_leaves
                    .iter()
                    .map(|&l| c.quantity[l] * c.price[l])
                    .sum::<f64>()
                    + node.nodes.iter().map(|&j| c.node_weight[j]).sum::<f64>();
                c.node_weight[k] = w;
                let e = eval_param(&node.elasticity, params)?;
                if !(e >= 0.0) || !e.is_finite() {
                    return Err(EvalError(format!("{name}: elasticity is {e}")));
                }
                c.node_sigma[k] = if node.output { -e } else { e };
            }
            for k in 0..nn {
                let node = &b.nodes[k];
                let w = c.node_weight[k];
                for &l in &node.direct_leaves {
                    c.leaf_share[l] = if w > 0.0 {
                        c.quantity[l] * c.price[l] / w
                    } else {
                        0.0
                    };
                }
                for &j in &node.nodes {
                    c.node_share[j] = if w > 0.0 { c.node_weight[j] / w } else { 0.0 };
                }
                let up = node.parent.map(|p| c.responsive[p]).unwrap_or(false);
                c.responsive[k] = up || c.node_sigma[k] != 0.0;
            }
            sector_coef.push(c);
        }
        let mut consumer_coef = Vec::with_capacity(self.consumers.len());
        for (hi, b) in self.consumers.iter().enumerate() {
            let name = &m.consumers[hi].name;
            let mut c = ConsumerCoef::default();
            for d in &b.demands {
                let q = eval_param(&d.quantity, params)?;
                let p = eval_param(&d.price, params)?;
                if !(q >= 0.0) || !(p > 0.0) || !q.is_finite() || !p.is_finite() {
                    return Err(EvalError(format!(
                        "{name}: final demand for {} has quantity {q} and price {p}",
                        m.commodities[d.commodity].name
                    )));
                }
                c.quantity.push(q);
                c.price.push(p);
            }
            c.total = c.quantity.iter().zip(&c.price).map(|(q, p)| q * p).sum();
            c.share = c
                .quantity
                .iter()
                .zip(&c.price)
                .map(|(q, p)| if c.total > 0.0 { q * p / c.total } else { 0.0 })
                .collect();
            let s = eval_param(&b.elasticity, params)?;
            if !(s >= 0.0) || !s.is_finite() {
                return Err(EvalError(format!("{name}: demand elasticity is {s}")));
            }
            c.sigma = s;
            consumer_coef.push(c);
        }
        self.sector_coef = sector_coef;
        self.consumer_coef = consumer_coef;
        self.params = params.to_vec();
        Ok(())
    }

    /// Variable bounds with the current parameters: S ≥ 0, P ≥ 0, M free, auxiliaries as
    /// declared.
    pub fn bounds(&self) -> Result<Bounds, EvalError> {
        let n = self.dim();
        let mut lower = vec![0.0; n];
        let mut upper = vec![f64::INFINITY; n];
        for h in 0..self.model.consumers.len() {
            lower[self.model.consumer_var(h)] = f64::NEG_INFINITY;
        }
        for (a, aux) in self.model.auxiliaries.iter().enumerate() {
            let v = self.model.aux_var(a);
            lower[v] = eval_param(&aux.lower, &self.params)?;
            upper[v] = eval_param(&aux.upper, &self.params)?;
        }
        Ok(Bounds { lower, upper })
    }

    /// The benchmark point with the current parameters: activities and prices at `start`,
    /// auxiliaries at their start, incomes at endowment value plus tax revenue there.
    pub fn benchmark_point(&self) -> Result<Vec<f64>, EvalError> {
        let m = &self.model;
        let mut x = vec![0.0; self.dim()];
        for (i, s) in m.sectors.iter().enumerate() {
            x[m.sector_var(i)] = eval_param(&s.start, &self.params)?;
        }
        for (i, c) in m.commodities.iter().enumerate() {
            x[m.commodity_var(i)] = eval_param(&c.start, &self.params)?;
        }
        for (i, a) in m.auxiliaries.iter().enumerate() {
            x[m.aux_var(i)] = eval_param(&a.start, &self.params)?;
        }
        self.settle_incomes(&mut x)?;
        Ok(x)
    }

    /// Sets every income to its endowment value plus tax revenue at the point (iterating, since
    /// endowments and tax rates may themselves depend on incomes).
    pub fn settle_incomes(&self, x: &mut [f64]) -> Result<(), EvalError> {
        for _ in 0..100 {
            let st = self.point(x, false)?;
            let mut change: f64 = 0.0;
            for (h, b) in self.consumers.iter().enumerate() {
                let m = st.consumers[h].endowment_value + st.consumers[h].revenue;
                change = change.max((m - x[b.var]).abs());
                x[b.var] = m;
            }
            if change <= 1e-14 * (1.0 + x.iter().fold(0.0f64, |a, v| a.max(v.abs()))) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sets function scales from a point (the scenario's benchmark point) and the expenditure
    /// indices used by `ev`: zero profit by max(1, larger of unit cost and revenue), market
    /// clearance by max(1, half the sum of absolute flows), income balance by max(1, |income|),
    /// constraints by 1.
    pub fn set_scales(&mut self, x0: &[f64]) -> Result<(), EvalError> {
        let st = self.point(x0, false)?;
        let m = &self.model;
        let mut scale = vec![1.0; self.dim()];
        for (si, b) in self.sectors.iter().enumerate() {
            let s = &st.sectors[si];
            scale[b.var] = s.cost.max(s.revenue).max(1.0);
        }
        for b in &self.consumers {
            scale[b.var] = x0[b.var].abs().max(1.0);
        }
        let flows: Vec<f64> = (0..m.commodities.len())
            .map(|c| {
                let inc = &self.incidence;
                let netputs: f64 = inc.leaves[c]
                    .iter()
                    .map(|&(si, l)| (x0[self.sectors[si].var] * st.sectors[si].quantity[l]).abs())
                    .sum();
                let demands: f64 = inc.demands[c]
                    .iter()
                    .map(|&(h, k)| st.consumers[h].demand[k].abs())
                    .sum();
                let endowments: f64 = inc.endowments[c]
                    .iter()
                    .map(|&(h, k)| st.consumers[h].endowment[k].abs())
                    .sum();
                netputs + demands + endowments
            })
            .collect();
        for (c, f) in flows.iter().enumerate() {
            scale[m.commodity_var(c)] = (0.5 * f).max(1.0);
        }
        self.scale = scale;
        self.e_bar = st.consumers.iter().map(|c| c.price_index).collect();
        Ok(())
    }

    /// Scaled residual of every function at `x` (inactive variables get 0).
    pub fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), EvalError> {
        self.evaluate(x, f, None)
    }

    /// Scaled residual and Jacobian triplets (row, column, value; duplicates add up). The pattern
    /// depends only on the structure, never on values, so a symbolic factorisation can be
    /// reused.
    pub fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Vec<(usize, usize, f64)>,
    ) -> Result<(), EvalError> {
        jac.clear();
        self.evaluate(x, f, Some(jac))
    }

    /// Scale of the function paired with `v`.
    pub fn scale_of(&self, v: usize) -> f64 {
        self.scale[v]
    }
}

fn build_node(
    s: &crate::model::Sector,
    cal: &CalibratedModel,
    si: usize,
    nest: usize,
    parent: Option<usize>,
    b: &mut SectorBlock,
) -> usize {
    let id = b.nodes.len();
    b.nodes.push(Node {
        parent,
        elasticity: s.nests[nest].elasticity.clone(),
        output: s.nests[nest].output,
        nodes: Vec::new(),
        direct_leaves: Vec::new(),
        leaves: (b.leaves.len(), b.leaves.len()),
    });
    // Leaves first, in netput order, then child nests in declaration order: deterministic.
    for (k, np) in s.netputs.iter().enumerate() {
        if np.nest == nest && cal.netput_active[si][k] {
            let l = b.leaves.len();
            b.leaves.push(Leaf {
                commodity: np.commodity,
                output: np.output,
                nest,
                path: std::iter::successors(Some(id), |&k| b.nodes[k].parent).collect(),
                quantity: np.quantity.clone(),
                price: np.price.clone(),
                taxes: np.taxes.iter().map(|t| (t.agent, t.rate.clone())).collect(),
            });
            b.nodes[id].direct_leaves.push(l);
        }
    }
    for (j, n) in s.nests.iter().enumerate().skip(2) {
        if n.parent == Some(nest) && cal.nest_active[si][j] {
            let child = build_node(s, cal, si, j, Some(id), b);
            b.nodes[id].nodes.push(child);
        }
    }
    b.nodes[id].leaves.1 = b.leaves.len();
    id
}
