//! Scenarios: parameter values, numeraire and fixed variables.

use super::{Allow, Builder, Sym};
use crate::ids::{AuxId, CommodityId, ConsumerId, SectorId, Var};
use crate::model::file::ModelFile;
use crate::model::Scenario;

impl<'a> Builder<'a> {
    /// Every scenario; `benchmark` is reserved for the model as written.
    pub(super) fn scenarios(&mut self, raw: &'a ModelFile) -> Vec<Scenario> {
        let mut scenarios = Vec::new();
        for (name, sc) in &raw.scenarios {
            let off = sc.span().start;
            if name == "benchmark" {
                self.diag_at(
                    off,
                    &format!("scenarios.{name}"),
                    "'benchmark' is reserved for the model as written".into(),
                );
                continue;
            }
            let sc = sc.get_ref();
            let mut parameters = Vec::new();
            if let Some(t) = &sc.parameters {
                let prefix = format!("scenarios.{name}.parameters");
                self.keyed(t, &prefix, |x, p, v, field| {
                    let Some(Sym::Param(i)) = x.symbols.get(p).copied() else {
                        x.diag_at(v.span().start, field, x.not_a_parameter(p));
                        return;
                    };
                    match v.get_ref() {
                        toml::Value::Integer(n) => parameters.push((i, *n as f64)),
                        toml::Value::Float(n) if n.is_finite() => parameters.push((i, *n)),
                        _ => {
                            let e = x.value(v, Allow::Parameters, field);
                            if let Some(n) = e.and_then(|e| x.number_now(&e, v.span().start, field))
                            {
                                parameters.push((i, n));
                            }
                        }
                    }
                });
            }
            let numeraire = sc
                .numeraire
                .as_ref()
                .and_then(|n| self.normaliser(n, &format!("scenarios.{name}.numeraire")));
            let mut fix = Vec::new();
            if let Some(t) = &sc.fix {
                let prefix = format!("scenarios.{name}.fix");
                self.keyed(t, &prefix, |x, var, v, field| {
                    let e = x.value(v, Allow::Parameters, field);
                    let idx = match x.symbols.get(var).copied() {
                        Some(Sym::Sector(i)) => Some(Var::Sector(SectorId::new(i))),
                        Some(Sym::Commodity(i)) => Some(Var::Commodity(CommodityId::new(i))),
                        Some(Sym::Consumer(i)) => Some(Var::Consumer(ConsumerId::new(i))),
                        Some(Sym::Aux(i)) => Some(Var::Auxiliary(AuxId::new(i))),
                        Some(other) => {
                            x.diag_at(
                                v.span().start,
                                field,
                                format!("'{var}' is a {}, not a variable", other.kind()),
                            );
                            None
                        }
                        None => {
                            x.diag_at(v.span().start, field, format!("unknown variable '{var}'"));
                            None
                        }
                    };
                    if let (Some(idx), Some(e)) = (idx, e) {
                        // Evaluated with this scenario's parameters (derived ones evaluated
                        // again): it must be a finite level.
                        let mut values = x.params.clone();
                        let derived = x.rederive(&mut values, &parameters);
                        match derived.and_then(|()| crate::calibrate::eval_param(&e, &values)) {
                            Ok(n) if n.is_finite() => fix.push((idx, e)),
                            Ok(n) => x.diag_at(v.span().start, field, format!("evaluates to {n}")),
                            Err(err) => {
                                x.diag_at(v.span().start, field, format!("cannot evaluate: {err}"))
                            }
                        }
                    }
                });
            }
            self.scenario_dynamics(name, sc, &parameters);
            scenarios.push(Scenario {
                name: name.clone(),
                description: sc.description.clone().unwrap_or_default(),
                parameters,
                numeraire,
                fix,
            });
        }
        scenarios
    }
}
