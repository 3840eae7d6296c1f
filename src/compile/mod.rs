//! `Model` → [`Structure`]: the mixed complementarity problem's shape, compiled once.
//!
//! The structure is immutable and `Sync`: the variable layout ([`Layout`]), every sector's nest
//! trees with their leaves in depth-first order, the consumers' demands and endowments, and the
//! incidence maps. It holds every netput, nest, demand and endowment the file declares, including
//! those that carry no flow with some parameters: which of them are pruned is decided by
//! calibration, per parameter vector (`calibrate::Coefficients`), so a scenario may turn a flow on
//! or off without recompiling. Evaluation (`eval`) takes the structure, the coefficients and a
//! per-thread workspace. Formulas: `docs/equations.md`.

mod eval;
pub mod forms;
mod layout;

use std::sync::Arc;

use crate::calibrate::{self, CalibrationError, Coefficients};
use crate::expr::Expr;
use crate::ids::{CommodityId, ConsumerId, NetputId, SectorId, VarId};
use crate::model::Model;
use crate::solve::jacobian::halfway;

pub use eval::{
    Bounds, ConsumerState, EvalWorkspace, EvaluationError, PointState, SectorState, System,
};
pub use layout::{Layout, Var, VarKind};

/// A tax on one netput, paid to a consumer.
#[derive(Debug, Clone)]
pub(crate) struct LeafTax {
    pub agent: ConsumerId,
    /// May depend on variables (endogenous taxes).
    pub rate: Expr,
}

/// One leaf of a sector's nest trees: a netput. A model over sets has one per non-zero of its
/// input-output data (25 million at N = 5000), so a leaf is 40 bytes and owns no allocation
/// unless taxed: its quantity and reference price stay in the model (`Sector::netputs`, read
/// by calibration), its path is shared by the leaves of one node.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Position among the sector's netputs in the file.
    pub netput: NetputId,
    pub commodity: CommodityId,
    /// The commodity's price variable.
    pub price_var: VarId,
    pub output: bool,
    /// Model nest id of its parent (for `demand(S, C, NEST)`); `u32` like the ids, to keep
    /// the leaf at 40 bytes.
    pub nest: u32,
    /// Nodes from the parent (`path[0]`) up to the root (structure only, so built once; one
    /// per node).
    pub path: Arc<Vec<usize>>,
    pub taxes: LeafTaxes,
    /// Position of this leaf's first tax in the sector's flat tax list (`u32`: a sector's taxes
    /// are at most its leaves, counted in `u32` by the compact coefficients).
    pub first_tax: u32,
}

/// A leaf's taxes behind one pointer, none allocated for an untaxed leaf; reads as a slice.
/// A boxed `Vec` on purpose: a thin pointer (8 bytes) where a `Vec` or a boxed slice would take
/// 24 or 16 in every one of millions of leaves, most of them untaxed.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone, Default)]
pub(crate) struct LeafTaxes(Option<Box<Vec<LeafTax>>>);

impl LeafTaxes {
    fn new(taxes: Vec<LeafTax>) -> LeafTaxes {
        LeafTaxes((!taxes.is_empty()).then(|| Box::new(taxes)))
    }
}

impl std::ops::Deref for LeafTaxes {
    type Target = [LeafTax];
    fn deref(&self) -> &[LeafTax] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<'a> IntoIterator for &'a LeafTaxes {
    type Item = &'a LeafTax;
    type IntoIter = std::slice::Iter<'a, LeafTax>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A compiled nest: its leaves are the contiguous range `leaves.0..leaves.1`.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Model nest id.
    pub nest: usize,
    pub parent: Option<usize>,
    pub elasticity: Expr,
    pub output: bool,
    /// Child nodes.
    pub nodes: Vec<usize>,
    /// Child leaves: consecutive, the first of the node's `leaves` (a range, not a list: a
    /// model over sets has millions of leaves, 8 bytes each in a list).
    pub direct_leaves: std::ops::Range<usize>,
    pub leaves: (usize, usize),
}

#[derive(Debug, Clone)]
pub(crate) struct SectorBlock {
    pub var: VarId,
    /// Nodes in preorder; the input root (if any) and the output root (if any) are roots.
    pub nodes: Vec<Node>,
    pub input_root: Option<usize>,
    pub output_root: Option<usize>,
    pub leaves: Vec<Leaf>,
    /// Number of taxes over all leaves.
    pub n_taxes: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct DemandLeaf {
    pub commodity: CommodityId,
    pub price_var: VarId,
    pub quantity: Expr,
    pub price: Expr,
    /// Subsistence quantity (Stone–Geary demand), when given.
    pub subsistence: Option<Expr>,
}

#[derive(Debug, Clone)]
pub(crate) struct EndowmentLeaf {
    pub commodity: CommodityId,
    pub price_var: VarId,
    /// May be negative and may depend on variables.
    pub quantity: Expr,
}

#[derive(Debug, Clone)]
pub(crate) struct ConsumerBlock {
    pub var: VarId,
    pub elasticity: Expr,
    pub demands: Vec<DemandLeaf>,
    pub endowments: Vec<EndowmentLeaf>,
    /// Stone–Geary when any demand gives a subsistence quantity, CES otherwise.
    pub stone_geary: bool,
}

/// Who touches what: reverse maps from commodities and consumers to the final demands,
/// endowments and taxes that involve them, in layout order. The leaves of a commodity are not
/// kept (one entry per netput: 200 MB at N = 5000 held through every solve for the one pass
/// that needs them): [`Structure::leaves_by_commodity`] builds them on demand.
#[derive(Debug, Clone, Default)]
pub struct Incidence {
    /// Per commodity: (consumer, k) of every final demand for it.
    pub demands: Vec<Vec<(ConsumerId, usize)>>,
    /// Per commodity: (consumer, k) of every endowment of it.
    pub endowments: Vec<Vec<(ConsumerId, usize)>>,
    /// Per consumer: (sector, leaf, k) of every tax paid to it.
    pub taxes: Vec<Vec<(SectorId, usize, usize)>>,
}

impl Incidence {
    fn build(nc: usize, nh: usize, sectors: &[SectorBlock], consumers: &[ConsumerBlock]) -> Self {
        // Counted first, so that each list is allocated once at its size.
        let mut taxes_of = vec![0usize; nh];
        for b in sectors {
            for leaf in &b.leaves {
                for t in &leaf.taxes {
                    taxes_of[t.agent] += 1;
                }
            }
        }
        let mut inc = Incidence {
            demands: vec![Vec::new(); nc],
            endowments: vec![Vec::new(); nc],
            taxes: taxes_of.into_iter().map(Vec::with_capacity).collect(),
        };
        for (si, b) in sectors.iter().enumerate() {
            let si = SectorId::new(si);
            for (l, leaf) in b.leaves.iter().enumerate() {
                for (k, t) in leaf.taxes.iter().enumerate() {
                    inc.taxes[t.agent].push((si, l, k));
                }
            }
        }
        for (h, b) in consumers.iter().enumerate() {
            let h = ConsumerId::new(h);
            for (k, d) in b.demands.iter().enumerate() {
                inc.demands[d.commodity].push((h, k));
            }
            for (k, e) in b.endowments.iter().enumerate() {
                inc.endowments[e.commodity].push((h, k));
            }
        }
        inc
    }
}

/// Why a model could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The model's own parameters do not calibrate (a negative quantity, a bad elasticity...).
    #[error("calibration: {0}")]
    Calibration(#[from] CalibrationError),
}

/// The compiled shape of a model's complementarity problem; see the module documentation.
#[derive(Debug)]
pub struct Structure {
    model: Model,
    layout: Layout,
    pub(crate) sectors: Vec<SectorBlock>,
    pub(crate) consumers: Vec<ConsumerBlock>,
    incidence: Incidence,
    /// Benchmark income of each consumer with the model's own parameters (M̄ of `ev`).
    pub(crate) benchmark_income: Vec<f64>,
    /// The first sector of an evaluation's second half ([`Structure::halfway_sector`]).
    halfway_sector: Option<usize>,
}

/// Compiles a model: builds its structure, then calibrates it once to the model's own
/// parameters to record the benchmark incomes that `ev` is measured against.
pub fn compile(model: Model) -> Result<(Structure, Coefficients), CompileError> {
    let layout = Layout::of(&model);
    // Sectors are compiled independently, in parallel (a model over sets has millions of
    // leaves); collected in model order, so the structure is the same whatever the threads.
    use rayon::prelude::*;
    let sectors: Vec<SectorBlock> = model
        .sectors
        .par_iter()
        .enumerate()
        .map(|(si, s)| {
            let mut block = SectorBlock {
                var: layout.sector(SectorId::new(si)),
                nodes: Vec::new(),
                input_root: None,
                output_root: None,
                leaves: Vec::with_capacity(s.netputs.len()),
                n_taxes: 0,
            };
            let tree = NestTree::of(s);
            for root in [0usize, 1] {
                // A root without any netput or nest below it has nothing to aggregate.
                if !tree.occupied[root] {
                    continue;
                }
                let id = build_node(s, &tree, &layout, root, None, &mut block);
                if root == 0 {
                    block.input_root = Some(id);
                } else {
                    block.output_root = Some(id);
                }
            }
            block
        })
        .collect();
    let consumers: Vec<ConsumerBlock> = model
        .consumers
        .iter()
        .enumerate()
        .map(|(hi, h)| ConsumerBlock {
            var: layout.consumer(ConsumerId::new(hi)),
            elasticity: h.elasticity.clone(),
            demands: h
                .demands
                .iter()
                .map(|d| DemandLeaf {
                    commodity: CommodityId::new(d.commodity),
                    price_var: layout.commodity(CommodityId::new(d.commodity)),
                    quantity: d.quantity.clone(),
                    price: d.price.clone(),
                    subsistence: d.subsistence.clone(),
                })
                .collect(),
            endowments: h
                .endowments
                .iter()
                .map(|e| EndowmentLeaf {
                    commodity: CommodityId::new(e.commodity),
                    price_var: layout.commodity(CommodityId::new(e.commodity)),
                    quantity: e.quantity.clone(),
                })
                .collect(),
            stone_geary: h.demands.iter().any(|d| d.subsistence.is_some()),
        })
        .collect();
    let incidence = Incidence::build(
        model.commodities.len(),
        model.consumers.len(),
        &sectors,
        &consumers,
    );
    let leaves: usize = sectors.iter().map(|b| b.leaves.len()).sum();
    let halfway_sector = (leaves >= Structure::PARALLEL_LEAVES)
        .then(|| halfway(sectors.iter().map(|b| b.leaves.len()), leaves, |_| true))
        .flatten();
    let mut structure = Structure {
        halfway_sector,
        benchmark_income: vec![0.0; model.consumers.len()],
        model,
        layout,
        sectors,
        consumers,
        incidence,
    };
    let params = structure.model.param_values();
    let coefficients = calibrate::calibrate(&structure, &params)?;
    structure.benchmark_income = coefficients.benchmark_incomes(&structure);
    Ok((structure, coefficients))
}

/// A sector's nests with their netputs and children, and which of them hold a netput at or
/// below them: computed once, so that building the tree is linear in netputs and nests (a
/// sector may have a nest per element of a set and a netput per element of another).
struct NestTree {
    /// Per nest: its netputs, in file order.
    netputs: Vec<Vec<usize>>,
    /// Per nest: its child nests, in declaration order.
    children: Vec<Vec<usize>>,
    /// Per nest: does a netput lie in it or in a nest below it?
    occupied: Vec<bool>,
}

impl NestTree {
    fn of(s: &crate::model::Sector) -> NestTree {
        let n = s.nests.len();
        let mut netputs = vec![Vec::new(); n];
        for (k, np) in s.netputs.iter().enumerate() {
            netputs[np.nest()].push(k);
        }
        let mut children = vec![Vec::new(); n];
        for (j, nest) in s.nests.iter().enumerate().skip(2) {
            if let Some(p) = nest.parent {
                children[p].push(j);
            }
        }
        let mut occupied = vec![false; n];
        for (j, list) in netputs.iter().enumerate() {
            // Up the parents from each nest holding a netput, stopping where an earlier walk
            // has been (validation has ruled out cycles; the step bound is a guard).
            let mut at = Some(j).filter(|_| !list.is_empty());
            let mut steps = 0;
            while let Some(i) = at {
                if occupied[i] || steps > n {
                    break;
                }
                occupied[i] = true;
                at = s.nests[i].parent;
                steps += 1;
            }
        }
        NestTree {
            netputs,
            children,
            occupied,
        }
    }
}

fn build_node(
    s: &crate::model::Sector,
    tree: &NestTree,
    layout: &Layout,
    nest: usize,
    parent: Option<usize>,
    b: &mut SectorBlock,
) -> usize {
    let id = b.nodes.len();
    b.nodes.push(Node {
        nest,
        parent,
        elasticity: s.nests[nest].elasticity.clone(),
        output: s.nests[nest].output,
        nodes: Vec::new(),
        direct_leaves: b.leaves.len()..b.leaves.len(),
        leaves: (b.leaves.len(), b.leaves.len()),
    });
    let path: Arc<Vec<usize>> =
        Arc::new(std::iter::successors(Some(id), |&k| b.nodes[k].parent).collect());
    // Leaves first, in netput order, then child nests in declaration order: deterministic.
    for &k in &tree.netputs[nest] {
        let np = &s.netputs[k];
        let l = b.leaves.len();
        let taxes = LeafTaxes::new(
            s.taxes_of(k)
                .iter()
                .map(|t| LeafTax {
                    agent: ConsumerId::new(t.agent),
                    rate: t.rate.clone(),
                })
                .collect(),
        );
        let n_taxes = taxes.len();
        b.leaves.push(Leaf {
            netput: NetputId::new(k),
            commodity: np.commodity,
            price_var: layout.commodity(np.commodity),
            output: np.output,
            nest: nest as u32,
            path: path.clone(),
            taxes,
            first_tax: b.n_taxes as u32,
        });
        b.n_taxes += n_taxes;
        b.nodes[id].direct_leaves.end = l + 1;
    }
    for &j in &tree.children[nest] {
        if tree.occupied[j] {
            let child = build_node(s, tree, layout, j, Some(id), b);
            b.nodes[id].nodes.push(child);
        }
    }
    b.nodes[id].leaves.1 = b.leaves.len();
    id
}

impl Structure {
    pub fn model(&self) -> &Model {
        &self.model
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn incidence(&self) -> &Incidence {
        &self.incidence
    }

    /// Leaves of every sector's tree (a netput each): the size of an evaluation.
    pub fn leaf_count(&self) -> usize {
        self.sectors.iter().map(|b| b.leaves.len()).sum()
    }

    /// Leaves from which the sectors are evaluated in two halves, one per core: at scale an
    /// evaluation is bound by memory bandwidth, which one core does not saturate.
    pub const PARALLEL_LEAVES: usize = 1 << 18;

    /// The first sector of an evaluation's second half (halving the leaves), or None for a
    /// structure with fewer than [`Structure::PARALLEL_LEAVES`] leaves: fixed when the
    /// structure is built, so the split is the same at every evaluation and on any thread
    /// count.
    pub(crate) fn halfway_sector(&self) -> Option<usize> {
        self.halfway_sector
    }

    /// Per commodity: (sector, leaf) of every netput of it, sectors and leaves in order. Built
    /// on each call (counted first, so each list is allocated once at its size) for the
    /// commands that list them (`describe`); the solve path does not hold it.
    pub fn leaves_by_commodity(&self) -> Vec<Vec<(SectorId, u32)>> {
        let mut count = vec![0usize; self.model.commodities.len()];
        for b in &self.sectors {
            for leaf in &b.leaves {
                count[leaf.commodity] += 1;
            }
        }
        let mut leaves: Vec<Vec<(SectorId, u32)>> =
            count.into_iter().map(Vec::with_capacity).collect();
        for (si, b) in self.sectors.iter().enumerate() {
            for (l, leaf) in b.leaves.iter().enumerate() {
                // A sector's leaves are counted in u32 by the compact coefficients too.
                leaves[leaf.commodity].push((SectorId::new(si), l as u32));
            }
        }
        leaves
    }
    /// Number of variables.
    pub fn dim(&self) -> usize {
        self.layout.dim()
    }
    pub fn var_name(&self, v: VarId) -> &str {
        self.layout.var_name(&self.model, v)
    }
    pub fn equation_name(&self, v: VarId) -> String {
        self.layout.equation_name(&self.model, v)
    }
    /// The system at one parameter vector: structure and coefficients together.
    pub fn with<'a>(&'a self, coefficients: &'a Coefficients) -> System<'a> {
        System {
            structure: self,
            coef: coefficients,
        }
    }
}

#[cfg(test)]
mod tests {
    /// A model over sets holds a netput and a leaf per non-zero of its data (25 million of each
    /// at N = 5000): their sizes are the load path's memory per non-zero.
    #[test]
    fn a_netput_and_a_leaf_take_40_bytes_each() {
        assert_eq!(std::mem::size_of::<crate::model::Netput>(), 40);
        assert_eq!(std::mem::size_of::<super::Leaf>(), 40);
    }
}
