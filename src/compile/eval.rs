//! Evaluation of the three equation families (and auxiliary constraints) with their analytic
//! Jacobian.
//!
//! Per sector: leaf price indices π (with their gradients through prices and endogenous tax
//! rates), nest cost/revenue indices bottom-up, compensated quantities top-down, and the local
//! derivative ∂x_i/∂π_l from the path formula of `docs/equations.md` §3. Everything else is the
//! chain rule.

use super::{EquationSystem, SectorBlock, SectorCoef};
use crate::expr::{EvalContext, EvalError, Expr, Func, Grad};

/// Values of one sector at a point.
#[derive(Debug, Clone, Default)]
pub struct SectorState {
    /// Leaf price indices π.
    pub pi: Vec<f64>,
    /// Physical quantity per unit of activity of each leaf (demand or supply).
    pub quantity: Vec<f64>,
    /// Unit cost and unit revenue.
    pub cost: f64,
    pub revenue: f64,
    /// Per leaf, per tax: the rate.
    pub tax_rate: Vec<Vec<f64>>,
    /// Gradients of the leaf price indices, flat: leaf l's entries are
    /// `pi_grad[pi_grad_start[l]..pi_grad_start[l + 1]]` (one allocation per sector, not per leaf).
    pub(crate) pi_grad: Grad,
    pub(crate) pi_grad_start: Vec<usize>,
    pub(crate) tax_grad: Vec<Vec<Grad>>,
    /// Per leaf i: (first leaf l, ∂x_i/∂π_l for l = first..): the only leaves whose prices move
    /// x_i.
    pub(crate) dx: Vec<(usize, Vec<f64>)>,
}

impl SectorState {
    /// The gradient of leaf l's price index.
    pub(crate) fn pi_grad_of(&self, l: usize) -> &[(usize, f64)] {
        &self.pi_grad[self.pi_grad_start[l]..self.pi_grad_start[l + 1]]
    }
}

/// Values of one consumer at a point.
#[derive(Debug, Clone, Default)]
pub struct ConsumerState {
    /// Expenditure (price) index e.
    pub price_index: f64,
    pub demand: Vec<f64>,
    pub endowment: Vec<f64>,
    pub endowment_value: f64,
    /// Tax revenue received.
    pub revenue: f64,
    pub welfare: f64,
    pub(crate) endowment_grad: Vec<Grad>,
    /// Per final demand: π_d and ∂ln e/∂π_d = θ_d π_d^(−σ) e^(σ−1) (computed once per point;
    /// every cross-price derivative uses them).
    pub(crate) pi: Vec<f64>,
    pub(crate) dlog_e: Vec<f64>,
}

/// Everything computed at a point, for the equations, the functions and the reports.
#[derive(Debug, Clone, Default)]
pub struct PointState {
    pub sectors: Vec<SectorState>,
    pub consumers: Vec<ConsumerState>,
}

struct VarCtx<'a> {
    params: &'a [f64],
    x: &'a [f64],
}

impl EvalContext for VarCtx<'_> {
    fn param(&self, i: usize) -> f64 {
        self.params[i]
    }
    fn var(&self, i: usize) -> f64 {
        self.x[i]
    }
    fn func(&self, _f: &Func, _s: f64, _g: Option<&mut Grad>) -> Result<f64, EvalError> {
        Err(EvalError("functions are not allowed here".into()))
    }
}

#[inline]
fn pw(a: f64, sigma: f64) -> f64 {
    if sigma == 0.0 {
        1.0
    } else {
        a.powf(sigma)
    }
}

/// CES aggregate of (share, value) pairs with elasticity σ (σ = 0 linear, σ = 1 geometric).
fn ces(sigma: f64, items: impl Iterator<Item = (f64, f64)>) -> f64 {
    if sigma == 0.0 {
        items.map(|(t, v)| t * v).sum()
    } else if (sigma - 1.0).abs() < 1e-12 {
        items
            .filter(|(t, _)| *t > 0.0)
            .map(|(t, v)| t * v.ln())
            .sum::<f64>()
            .exp()
    } else {
        let rho = 1.0 - sigma;
        items
            .filter(|(t, _)| *t > 0.0)
            .map(|(t, v)| t * v.powf(rho))
            .sum::<f64>()
            .powf(1.0 / rho)
    }
}

fn finite(v: f64, what: impl FnOnce() -> String) -> Result<f64, EvalError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(EvalError(format!("{} is {v}", what())))
    }
}

impl EquationSystem {
    fn sector_state(
        &self,
        b: &SectorBlock,
        c: &SectorCoef,
        x: &[f64],
        grad: bool,
    ) -> Result<SectorState, EvalError> {
        let ctx = VarCtx {
            params: &self.params,
            x,
        };
        let nl = b.leaves.len();
        let mut st = SectorState {
            pi: vec![0.0; nl],
            quantity: vec![0.0; nl],
            tax_rate: Vec::with_capacity(nl),
            ..Default::default()
        };
        if grad {
            st.pi_grad = Vec::with_capacity(nl);
            st.pi_grad_start = Vec::with_capacity(nl + 1);
            st.pi_grad_start.push(0);
            st.tax_grad = Vec::with_capacity(nl);
        }
        for (l, leaf) in b.leaves.iter().enumerate() {
            let cvar = self.model.commodity_var(leaf.commodity);
            let p = x[cvar];
            let mut total = 0.0;
            let mut rates = Vec::with_capacity(leaf.taxes.len());
            let mut rate_grads = Vec::new();
            for (_, rate) in &leaf.taxes {
                if grad {
                    let mut g = Grad::new();
                    let t = rate.eval_grad(&ctx, 1.0, Some(&mut g))?;
                    rate_grads.push(g);
                    rates.push(t);
                    total += t;
                } else {
                    let t = rate.eval(&ctx)?;
                    rates.push(t);
                    total += t;
                }
            }
            let sign = if leaf.output { -1.0 } else { 1.0 };
            let factor = 1.0 + sign * total;
            let pbar = c.price[l];
            st.pi[l] = p * factor / pbar;
            if grad {
                st.pi_grad.push((cvar, factor / pbar));
                for rg in &rate_grads {
                    st.pi_grad
                        .extend(rg.iter().map(|&(v, d)| (v, sign * p * d / pbar)));
                }
                st.pi_grad_start.push(st.pi_grad.len());
                st.tax_grad.push(rate_grads);
            }
            st.tax_rate.push(rates);
        }
        // Node indices bottom-up (children follow parents in preorder).
        let nn = b.nodes.len();
        let mut cn = vec![0.0; nn];
        for k in (0..nn).rev() {
            let node = &b.nodes[k];
            let sigma = c.node_sigma[k];
            let leaves = node
                .direct_leaves
                .iter()
                .map(|&l| (c.leaf_share[l], st.pi[l]));
            let nodes = node.nodes.iter().map(|&j| (c.node_share[j], cn[j]));
            cn[k] = ces(sigma, leaves.chain(nodes));
        }
        // Quantities top-down.
        let mut mult = vec![1.0; nn];
        for k in 0..nn {
            let node = &b.nodes[k];
            let sigma = c.node_sigma[k];
            for &j in &node.nodes {
                mult[j] = mult[k] * pw(cn[k] / cn[j], sigma);
            }
            for &l in &node.direct_leaves {
                st.quantity[l] = c.quantity[l] * mult[k] * pw(cn[k] / st.pi[l], sigma);
            }
        }
        st.cost = b
            .input_root
            .map(|r| c.node_weight[r] * cn[r])
            .unwrap_or(0.0);
        st.revenue = b
            .output_root
            .map(|r| c.node_weight[r] * cn[r])
            .unwrap_or(0.0);
        // A sector's layout index is its index among the sectors (sectors come first).
        let name = || self.model.sectors[b.var].name.clone();
        finite(st.cost, || format!("unit cost of {}", name()))?;
        finite(st.revenue, || format!("unit revenue of {}", name()))?;
        for (l, q) in st.quantity.iter().enumerate() {
            finite(*q, || {
                format!(
                    "{}: quantity of {}",
                    name(),
                    self.model.commodities[b.leaves[l].commodity].name
                )
            })?;
        }
        if grad {
            // V_n from prefix sums of leaf values p̄·x·π.
            let mut pre = vec![0.0; nl + 1];
            for l in 0..nl {
                pre[l + 1] = pre[l] + c.price[l] * st.quantity[l] * st.pi[l];
            }
            let value = |k: usize| pre[b.nodes[k].leaves.1] - pre[b.nodes[k].leaves.0];
            st.dx = Vec::with_capacity(nl);
            for i in 0..nl {
                // Highest responsive node on the path decides which leaves can move x_i.
                let path = &b.leaves[i].path;
                let top = path.iter().rposition(|&k| c.node_sigma[k] != 0.0);
                let Some(top) = top else {
                    st.dx.push((i, Vec::new()));
                    continue;
                };
                let (start, end) = b.nodes[path[top]].leaves;
                let mut row = vec![0.0; end - start];
                for (j, &k) in path.iter().enumerate().take(top + 1) {
                    let sigma = c.node_sigma[k];
                    if sigma == 0.0 {
                        continue;
                    }
                    let vk = value(k);
                    if vk != 0.0 {
                        let (a, z) = b.nodes[k].leaves;
                        for l in a..z {
                            row[l - start] += sigma * c.price[l] * st.quantity[l] / vk;
                        }
                    }
                    if j == 0 {
                        row[i - start] -= sigma / st.pi[i];
                    } else {
                        let below = path[j - 1];
                        let vb = value(below);
                        if vb != 0.0 {
                            let (a, z) = b.nodes[below].leaves;
                            for l in a..z {
                                row[l - start] -= sigma * c.price[l] * st.quantity[l] / vb;
                            }
                        }
                    }
                }
                let xi = st.quantity[i];
                for r in row.iter_mut() {
                    *r *= xi;
                }
                st.dx.push((start, row));
            }
        }
        Ok(st)
    }

    /// Evaluates every sector and consumer at `x`.
    pub fn point(&self, x: &[f64], grad: bool) -> Result<PointState, EvalError> {
        let mut sectors = Vec::with_capacity(self.sectors.len());
        for (b, c) in self.sectors.iter().zip(&self.sector_coef) {
            sectors.push(self.sector_state(b, c, x, grad)?);
        }
        let ctx = VarCtx {
            params: &self.params,
            x,
        };
        let mut consumers: Vec<ConsumerState> = Vec::with_capacity(self.consumers.len());
        for (h, (b, c)) in self.consumers.iter().zip(&self.consumer_coef).enumerate() {
            let name = &self.model.consumers[h].name;
            let mut s = ConsumerState::default();
            let pis: Vec<f64> = b
                .demands
                .iter()
                .zip(&c.price)
                .map(|(d, p)| x[self.model.commodity_var(d.commodity)] / p)
                .collect();
            s.price_index = finite(
                ces(c.sigma, c.share.iter().copied().zip(pis.iter().copied())),
                || format!("price index of {name}"),
            )?;
            let m = x[b.var];
            s.dlog_e = pis
                .iter()
                .zip(&c.share)
                .map(|(pi, th)| th * pw(*pi, -c.sigma) * pw(s.price_index, c.sigma - 1.0))
                .collect();
            for (k, pi) in pis.iter().enumerate() {
                let d = c.quantity[k]
                    * (m / (s.price_index * c.total))
                    * pw(s.price_index / pi, c.sigma);
                s.demand
                    .push(finite(d, || format!("final demand of {name}"))?);
            }
            s.welfare = m / (s.price_index * c.total);
            s.pi = pis;
            for (commodity, q) in &b.endowments {
                let p = x[self.model.commodity_var(*commodity)];
                let v = if grad {
                    let mut g = Grad::new();
                    let v = q.eval_grad(&ctx, 1.0, Some(&mut g))?;
                    s.endowment_grad.push(g);
                    v
                } else {
                    q.eval(&ctx)?
                };
                s.endowment
                    .push(finite(v, || format!("endowment of {name}"))?);
                s.endowment_value += v * p;
            }
            consumers.push(s);
        }
        for (h, taxes) in self.incidence.taxes.iter().enumerate() {
            for &(si, l, k) in taxes {
                let b = &self.sectors[si];
                let p = x[self.model.commodity_var(b.leaves[l].commodity)];
                let st = &sectors[si];
                consumers[h].revenue += x[b.var] * st.tax_rate[l][k] * p * st.quantity[l];
            }
        }
        Ok(PointState { sectors, consumers })
    }

    /// Pushes `scale · ∂x_i/∂(variables)` of leaf `i` of sector `si`.
    fn leaf_grad(&self, st: &SectorState, i: usize, scale: f64, g: &mut Grad) {
        let (start, row) = &st.dx[i];
        for (o, d) in row.iter().enumerate() {
            for &(v, gp) in st.pi_grad_of(start + o) {
                g.push((v, scale * d * gp));
            }
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
        let b = &self.sectors[si];
        let leaf = &b.leaves[l];
        let cvar = self.model.commodity_var(leaf.commodity);
        let (level, p, t, q) = (x[b.var], x[cvar], st.tax_rate[l][k], st.quantity[l]);
        g.push((b.var, scale * t * p * q));
        g.push((cvar, scale * level * t * q));
        for &(v, d) in &st.tax_grad[l][k] {
            g.push((v, scale * level * p * q * d));
        }
        self.leaf_grad(st, l, scale * level * t * p, g);
    }

    /// Pushes `scale ·` the gradient of final demand `k` of consumer `h`.
    fn demand_grad(&self, h: usize, st: &ConsumerState, k: usize, scale: f64, g: &mut Grad) {
        let b = &self.consumers[h];
        let c = &self.consumer_coef[h];
        let e = st.price_index;
        let sigma = c.sigma;
        let pik = st.pi[k];
        let dk = st.demand[k];
        g.push((
            b.var,
            scale * c.quantity[k] / (e * c.total) * pw(e / pik, sigma),
        ));
        for (j, d) in b.demands.iter().enumerate() {
            let mut dd = (sigma - 1.0) * st.dlog_e[j];
            if j == k && sigma != 0.0 {
                dd -= sigma / pik;
            }
            g.push((
                self.model.commodity_var(d.commodity),
                scale * dk * dd / c.price[j],
            ));
        }
    }

    fn welfare_grad(&self, h: usize, st: &ConsumerState, scale: f64, g: &mut Grad) {
        let b = &self.consumers[h];
        let c = &self.consumer_coef[h];
        let e = st.price_index;
        g.push((b.var, scale / (e * c.total)));
        for (j, d) in b.demands.iter().enumerate() {
            g.push((
                self.model.commodity_var(d.commodity),
                -scale * st.welfare * st.dlog_e[j] / c.price[j],
            ));
        }
    }

    pub(crate) fn evaluate(
        &self,
        x: &[f64],
        f: &mut [f64],
        mut jac: Option<&mut Vec<(usize, usize, f64)>>,
    ) -> Result<(), EvalError> {
        let grad = jac.is_some();
        let st = self.point(x, grad)?;
        f.iter_mut().for_each(|v| *v = 0.0);
        let mut g = Grad::new();
        let push = |jac: &mut Option<&mut Vec<(usize, usize, f64)>>, row: usize, g: &mut Grad| {
            if let Some(j) = jac.as_deref_mut() {
                j.extend(g.drain(..).map(|(c, v)| (row, c, v)));
            } else {
                g.clear();
            }
        };
        for (si, b) in self.sectors.iter().enumerate() {
            let s = &st.sectors[si];
            let c = &self.sector_coef[si];
            let level = x[b.var];
            if !self.inactive[b.var] {
                f[b.var] = s.cost - s.revenue;
                if grad {
                    for (l, leaf) in b.leaves.iter().enumerate() {
                        let a = if leaf.output { -1.0 } else { 1.0 } * c.price[l] * s.quantity[l];
                        g.extend(s.pi_grad_of(l).iter().map(|&(v, d)| (v, a * d)));
                    }
                    push(&mut jac, b.var, &mut g);
                }
            }
            for (l, leaf) in b.leaves.iter().enumerate() {
                let row = self.model.commodity_var(leaf.commodity);
                let sign = if leaf.output { 1.0 } else { -1.0 };
                f[row] += sign * level * s.quantity[l];
                if grad {
                    g.push((b.var, sign * s.quantity[l]));
                    self.leaf_grad(s, l, sign * level, &mut g);
                    push(&mut jac, row, &mut g);
                }
                for (k, (agent, _)) in leaf.taxes.iter().enumerate() {
                    let hrow = self.consumers[*agent].var;
                    if grad {
                        self.tax_revenue_grad(si, s, x, l, k, -1.0, &mut g);
                        push(&mut jac, hrow, &mut g);
                    }
                }
            }
        }
        for (h, b) in self.consumers.iter().enumerate() {
            let s = &st.consumers[h];
            f[b.var] += x[b.var] - s.endowment_value - s.revenue;
            if grad {
                g.push((b.var, 1.0));
                push(&mut jac, b.var, &mut g);
            }
            for (k, (commodity, _)) in b.endowments.iter().enumerate() {
                let row = self.model.commodity_var(*commodity);
                f[row] += s.endowment[k];
                if grad {
                    g.extend(s.endowment_grad[k].iter().copied());
                    push(&mut jac, row, &mut g);
                    let p = x[row];
                    g.push((row, -s.endowment[k]));
                    g.extend(s.endowment_grad[k].iter().map(|&(v, d)| (v, -p * d)));
                    push(&mut jac, b.var, &mut g);
                }
            }
            for (k, d) in b.demands.iter().enumerate() {
                let row = self.model.commodity_var(d.commodity);
                f[row] -= s.demand[k];
                if grad {
                    self.demand_grad(h, s, k, -1.0, &mut g);
                    push(&mut jac, row, &mut g);
                }
            }
        }
        {
            let ctx = FuncCtx {
                sys: self,
                x,
                st: &st,
            };
            for (a, aux) in self.model.auxiliaries.iter().enumerate() {
                let row = self.model.aux_var(a);
                if grad {
                    f[row] = aux.constraint.eval_grad(&ctx, 1.0, Some(&mut g))?;
                    push(&mut jac, row, &mut g);
                } else {
                    f[row] = aux.constraint.eval(&ctx)?;
                }
            }
        }
        for (i, v) in f.iter_mut().enumerate() {
            if self.inactive[i] {
                *v = 0.0;
            } else {
                *v /= self.scale[i];
            }
            if !v.is_finite() {
                return Err(EvalError(format!(
                    "{} is not finite",
                    self.model.equation_name(i)
                )));
            }
        }
        if let Some(j) = jac {
            j.retain(|&(r, _, _)| !self.inactive[r]);
            for t in j.iter_mut() {
                t.2 /= self.scale[t.0];
            }
        }
        Ok(())
    }

    /// Evaluates an expression (target, indicator, constraint) at `x`.
    pub fn eval_expr(&self, x: &[f64], e: &Expr) -> Result<f64, EvalError> {
        let st = self.point(x, false)?;
        self.eval_expr_at(x, &st, e)
    }

    /// Evaluates an expression at `x` with its point state already computed.
    pub fn eval_expr_at(&self, x: &[f64], st: &PointState, e: &Expr) -> Result<f64, EvalError> {
        e.eval(&FuncCtx { sys: self, x, st })
    }
}

/// Context of auxiliary constraints, targets and indicators: parameters, variables and the
/// contract's functions at the current point.
struct FuncCtx<'a> {
    sys: &'a EquationSystem,
    x: &'a [f64],
    st: &'a PointState,
}

impl EvalContext for FuncCtx<'_> {
    fn param(&self, i: usize) -> f64 {
        self.sys.params[i]
    }
    fn var(&self, i: usize) -> f64 {
        self.x[i]
    }
    fn indicator(&self, i: usize) -> Result<f64, EvalError> {
        self.sys.model.indicators[i].expr.eval(self)
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
                let b = &sys.sectors[sector];
                let st = &self.st.sectors[sector];
                let mut v = 0.0;
                for (l, leaf) in b.leaves.iter().enumerate() {
                    if leaf.commodity == commodity
                        && leaf.output == output
                        && nest.is_none_or(|n| n == leaf.nest)
                    {
                        v += st.quantity[l];
                        if let Some(g) = grad.as_deref_mut() {
                            if st.dx.is_empty() {
                                return Err(EvalError(
                                    "gradient of demand() requested without derivatives".into(),
                                ));
                            }
                            sys.leaf_grad(st, l, scale, g);
                        }
                    }
                }
                Ok(v)
            }
            Func::Final {
                consumer,
                commodity,
            } => {
                let b = &sys.consumers[consumer];
                let st = &self.st.consumers[consumer];
                let mut v = 0.0;
                for (k, d) in b.demands.iter().enumerate() {
                    if d.commodity == commodity {
                        v += st.demand[k];
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
                let b = &sys.consumers[consumer];
                let st = &self.st.consumers[consumer];
                let mut v = 0.0;
                for (k, (c, _)) in b.endowments.iter().enumerate() {
                    if *c == commodity {
                        v += st.endowment[k];
                        if let Some(g) = grad.as_deref_mut() {
                            g.extend(st.endowment_grad[k].iter().map(|&(i, d)| (i, scale * d)));
                        }
                    }
                }
                Ok(v)
            }
            Func::Revenue { consumer } => {
                if let Some(g) = grad.as_deref_mut() {
                    for &(si, l, k) in &sys.incidence.taxes[consumer] {
                        sys.tax_revenue_grad(si, &self.st.sectors[si], self.x, l, k, scale, g);
                    }
                }
                Ok(self.st.consumers[consumer].revenue)
            }
            Func::Welfare { consumer } => {
                let st = &self.st.consumers[consumer];
                if let Some(g) = grad {
                    sys.welfare_grad(consumer, st, scale, g);
                }
                Ok(st.welfare)
            }
            Func::Ev { consumer } => {
                let st = &self.st.consumers[consumer];
                let c = &sys.consumer_coef[consumer];
                let k = sys.e_bar[consumer] * c.total;
                if let Some(g) = grad {
                    sys.welfare_grad(consumer, st, scale * k, g);
                }
                Ok(st.welfare * k - sys.m_bar[consumer])
            }
        }
    }
}
