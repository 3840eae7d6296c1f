//! Calibration: `Model` → `CalibratedModel`.
//!
//! Share parameters are never stored as numbers: they are value weights `q = Q·p̄` of the
//! benchmark quantities, recomputed from the parameter vector whenever a scenario sets one (see
//! `compile::EquationSystem::set_parameters`). What calibration decides once is the structure:
//! which netputs, nests, final demands and endowments carry flow (zero flows are pruned so they
//! can never produce 0/0), which sectors keep a zero-profit condition and which commodities keep a
//! market. Formulas: `docs/equations.md`.

use crate::expr::{EvalContext, EvalError, Expr, Func, Grad};
use crate::model::Model;

/// What was pruned, in model order, with a reason a modeller can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub what: String,
}

/// A model with its pruning decided.
#[derive(Debug, Clone)]
pub struct CalibratedModel {
    pub model: Model,
    /// Per sector, per netput: does it carry flow at the benchmark?
    pub netput_active: Vec<Vec<bool>>,
    /// Per sector, per nest: does it have a child that carries flow?
    pub nest_active: Vec<Vec<bool>>,
    /// Per sector: does it have a zero-profit condition?
    pub sector_active: Vec<bool>,
    /// Per consumer, per final demand.
    pub demand_active: Vec<Vec<bool>>,
    /// Per consumer, per endowment (only an endowment written as the number 0 is dropped).
    pub endowment_active: Vec<Vec<bool>>,
    /// Per commodity: does it have a market?
    pub market_active: Vec<bool>,
    pub pruned: Vec<Pruned>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("{field}: {message}")]
    Value { field: String, message: String },
}

pub(crate) struct ParamOnly<'a>(pub &'a [f64]);
impl EvalContext for ParamOnly<'_> {
    fn param(&self, i: usize) -> f64 {
        self.0[i]
    }
    fn var(&self, _i: usize) -> f64 {
        f64::NAN
    }
    fn func(&self, _f: &Func, _s: f64, _g: Option<&mut Grad>) -> Result<f64, EvalError> {
        Err(EvalError("functions are not allowed here".into()))
    }
}

/// Evaluates a parameter-only expression.
pub fn eval_param(e: &Expr, params: &[f64]) -> Result<f64, EvalError> {
    e.eval(&ParamOnly(params))
}

/// Decides pruning with the model's own parameters.
pub fn calibrate(model: &Model) -> Result<CalibratedModel, CalibrationError> {
    let params = model.param_values();
    let mut pruned = Vec::new();
    let value = |e: &Expr, field: String| -> Result<f64, CalibrationError> {
        eval_param(e, &params).map_err(|err| CalibrationError::Value {
            field,
            message: err.to_string(),
        })
    };
    let mut netput_active = Vec::new();
    let mut nest_active = Vec::new();
    let mut sector_active = Vec::new();
    let mut market_active = vec![false; model.commodities.len()];
    for s in &model.sectors {
        let mut act = Vec::new();
        for (k, np) in s.netputs.iter().enumerate() {
            let q = value(
                &np.quantity,
                format!("sectors.{}.netput[{k}].quantity", s.name),
            )?;
            let on = q != 0.0;
            if !on {
                let side = if np.output { "output" } else { "input" };
                pruned.push(Pruned {
                    what: format!(
                        "{}: {side} {} (nest {}): zero quantity",
                        s.name, model.commodities[np.commodity].name, s.nests[np.nest].name
                    ),
                });
            } else {
                market_active[np.commodity] = true;
            }
            act.push(on);
        }
        // A nest is active when some active netput lies below it.
        let mut nests = vec![false; s.nests.len()];
        for (k, np) in s.netputs.iter().enumerate() {
            if act[k] {
                let mut n = Some(np.nest);
                while let Some(i) = n {
                    nests[i] = true;
                    n = s.nests[i].parent;
                }
            }
        }
        for (i, n) in s.nests.iter().enumerate().skip(2) {
            if !nests[i] {
                pruned.push(Pruned {
                    what: format!("{}: nest {} has no flows", s.name, n.name),
                });
            }
        }
        let active = act.iter().any(|a| *a);
        if !active {
            pruned.push(Pruned {
                what: format!(
                    "{}: no netputs: no zero-profit condition, level held at start",
                    s.name
                ),
            });
        }
        sector_active.push(active);
        netput_active.push(act);
        nest_active.push(nests);
    }
    let mut demand_active = Vec::new();
    let mut endowment_active = Vec::new();
    for h in &model.consumers {
        let mut act = Vec::new();
        for (k, d) in h.demands.iter().enumerate() {
            let q = value(
                &d.quantity,
                format!("consumers.{}.demands[{k}].quantity", h.name),
            )?;
            if q == 0.0 {
                pruned.push(Pruned {
                    what: format!(
                        "{}: final demand for {}: zero quantity",
                        h.name, model.commodities[d.commodity].name
                    ),
                });
            } else {
                market_active[d.commodity] = true;
            }
            act.push(q != 0.0);
        }
        demand_active.push(act);
        let mut eact = Vec::new();
        for e in &h.endowments {
            // Only an endowment written as the number 0 is dropped: one that is zero through its
            // parameters may become non-zero in a scenario, and one that depends on variables
            // always stays.
            let zero = e.quantity.constant() == Some(0.0);
            if zero {
                pruned.push(Pruned {
                    what: format!(
                        "{}: endowment of {}: zero quantity",
                        h.name, model.commodities[e.commodity].name
                    ),
                });
            } else {
                market_active[e.commodity] = true;
            }
            eact.push(!zero);
        }
        endowment_active.push(eact);
    }
    for (c, on) in market_active.iter().enumerate() {
        if !on {
            pruned.push(Pruned {
                what: format!(
                    "{}: in no netput, demand or endowment: no market, price held at start",
                    model.commodities[c].name
                ),
            });
        }
    }
    Ok(CalibratedModel {
        model: model.clone(),
        netput_active,
        nest_active,
        sector_active,
        demand_active,
        endowment_active,
        market_active,
        pruned,
    })
}
