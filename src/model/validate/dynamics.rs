//! `[dynamics]` (an extension): the horizon, parameter updates and time paths, a scenario's
//! `from` and `paths`, a target's `period`, and the checks that keep a path meaningful:
//!
//! - `t` and `year` stand only in updates and paths (they are reserved names elsewhere);
//! - a path gives one value per period, and the model's paths replicate the benchmark at t = 0;
//! - a path is evaluated before its period is solved from parameters that do not move;
//! - a parameter that moves over time (by an update or a path) reaches either the technology
//!   (netput and final-demand quantities, reference prices, subsistence, elasticities: what
//!   calibration reads) or endowments, never both. A stock written into a production block as
//!   well as into an endowment would recalibrate the technology to the stock in every period
//!   (the benchmark shares would follow it), which no modeller means; the error says so.

use super::{Allow, Builder, Field, Sym};
use crate::expr::Expr;
use crate::model::file::{ModelFile, RawTable, RawValue, ScenarioFile, TargetFile};
use crate::model::{Dynamics, Model, ParamPath, PathValues, ScenarioDynamics, Update};

/// The longest path a model may ask for.
pub const MAX_PERIODS: usize = 10_000;

/// What validation remembers of `[dynamics]` while it reads the scenarios and targets, and for
/// the checks once the model is built.
#[derive(Default)]
pub(super) struct State {
    /// The number of periods, when the file has `[dynamics]` (the longest allowed when its
    /// `periods` is wrong, so that one defect is reported once, not again at every `from`).
    periods: Option<usize>,
    /// Whether `periods` is valid (path lengths are checked against it only then).
    horizon_known: bool,
    /// Parameters moved by `update`.
    updated: Vec<usize>,
    /// Every update and path entry: (parameter, offset, field, what moves it).
    entries: Vec<Entry>,
    /// Per scenario pushed so far: its `from` and paths.
    scenarios: Vec<ScenarioDynamics>,
    /// Parameters declared technology, with where they are listed.
    technology: Vec<(usize, usize)>,
}

struct Entry {
    parameter: usize,
    offset: usize,
    field: String,
    /// The path's values (None for an update).
    path: Option<PathValues>,
}

impl<'a> Builder<'a> {
    /// `[dynamics]`, read after the indicators (updates may use them) and before the scenarios
    /// (whose `from` and paths refer to the horizon). Per-scenario parts are filled in later.
    pub(super) fn dynamics(&mut self, raw: &'a ModelFile) -> Option<Dynamics> {
        let section = raw.dynamics.as_ref()?;
        let d = section.get_ref();
        let periods = self.count(&d.periods, "dynamics.periods", 1, MAX_PERIODS);
        self.dynamics.periods = Some(periods.unwrap_or(MAX_PERIODS));
        self.dynamics.horizon_known = periods.is_some();
        let number = |this: &mut Builder, v: &Option<RawValue>, name: &str, default: f64| {
            let field = format!("dynamics.{name}");
            let Some(raw) = v else { return default };
            let e = this.value(raw, Allow::Parameters, &field);
            e.and_then(|e| this.number_now(&e, raw.span().start, &field))
                .map(|x| (x, raw.span().start, field))
                .map_or(default, |(x, at, field)| {
                    let bad = match name {
                        "step" if x <= 0.0 => Some("must be positive"),
                        "discount_rate" if x <= -1.0 => Some("must be above -1"),
                        _ => None,
                    };
                    if let Some(why) = bad {
                        this.diag_at(at, &field, format!("{why} (is {x})"));
                    }
                    x
                })
        };
        let start_year = number(self, &d.start_year, "start_year", 0.0);
        let step = number(self, &d.step, "step", 1.0);
        let discount_rate = number(self, &d.discount_rate, "discount_rate", 0.0);
        let mut updates = Vec::new();
        if let Some(t) = &d.update {
            // A key over sets (`"K[r]" = ...`) is one update per element.
            self.keyed(t, "dynamics.update", |x, name, v, field| {
                let Some(parameter) = x.moved_parameter(name, v, field) else {
                    return;
                };
                x.time = true;
                let e = x.value(v, Allow::Indicators, field);
                x.time = false;
                let Some(expr) = e else { return };
                // Updates evaluate indicators as targets do: the same bound on their depth.
                x.check_indicator_depth(&expr, v.span().start, field, false);
                x.dynamics.updated.push(parameter);
                x.dynamics.entries.push(Entry {
                    parameter,
                    offset: v.span().start,
                    field: field.to_string(),
                    path: None,
                });
                updates.push(Update {
                    parameter,
                    expr,
                    site: x.site(field.to_string(), v.span().start),
                });
            });
        }
        let paths = self.paths(&d.paths, "dynamics.paths", &[]);
        let mut technology = Vec::new();
        for n in d.technology.iter().flat_map(|t| t.get_ref()) {
            let at = n.span().start;
            // A name over sets (`tfp[j]`) declares every element.
            self.each_name(n.get_ref(), at, "dynamics", |x, name, _| {
                match x.symbols.get(name).copied() {
                    Some(Sym::Param(i)) => {
                        technology.push(i);
                        x.dynamics.technology.push((i, at));
                    }
                    Some(other) => x.diag_at(
                        at,
                        &"dynamics.technology",
                        format!("'{name}' is a {}, not a parameter", other.kind()),
                    ),
                    None => x.diag_at(at, &"dynamics.technology", x.not_a_parameter(name)),
                }
            });
        }
        Some(Dynamics {
            periods: periods.unwrap_or(1),
            start_year,
            step,
            discount_rate,
            updates,
            paths,
            technology,
            scenarios: Vec::new(),
        })
    }

    /// The parameter an update or path entry moves.
    fn moved_parameter(&mut self, name: &str, v: &RawValue, field: Field) -> Option<usize> {
        match self.symbols.get(name).copied() {
            Some(Sym::Param(i)) => Some(i),
            Some(other) => {
                let msg = format!(
                    "'{name}' is a {}: only parameters move along a dynamic path",
                    other.kind()
                );
                self.diag_at(v.span().start, &field, msg);
                None
            }
            None => {
                let msg = self.not_a_parameter(name);
                self.diag_at(v.span().start, &field, msg);
                None
            }
        }
    }

    /// An integer in `[lo, hi]`.
    fn count(
        &mut self,
        v: &toml::Spanned<toml::Value>,
        field: &str,
        lo: usize,
        hi: usize,
    ) -> Option<usize> {
        let at = v.span().start;
        match v.get_ref() {
            toml::Value::Integer(n) if (lo as i64..=hi as i64).contains(n) => Some(*n as usize),
            toml::Value::Integer(n) => {
                self.diag_at(at, &field, format!("must lie in {lo} … {hi} (is {n})"));
                None
            }
            other => {
                let msg = format!("expected a whole number, found {}", other.type_str());
                self.diag_at(at, &field, msg);
                None
            }
        }
    }

    /// Paths under `prefix` (`dynamics.paths` or `scenarios.NAME.paths`); `set` lists the
    /// parameters the same scenario sets in `parameters` (a parameter is set one way or the
    /// other).
    fn paths(
        &mut self,
        table: &'a Option<RawTable>,
        prefix: &str,
        set: &[(usize, f64)],
    ) -> Vec<ParamPath> {
        let mut paths = Vec::new();
        let Some(t) = table else { return paths };
        let periods = self.dynamics.periods.unwrap_or(1);
        // A key over sets (`"tfp[j]" = [...]`) is one path per element.
        self.keyed(t, prefix, |x, name, v, field| {
            let at = v.span().start;
            let Some(parameter) = x.moved_parameter(name, v, field) else {
                return;
            };
            if x.dynamics.updated.contains(&parameter) {
                x.diag_at(at, field, format!("'{name}' follows an update (dynamics.update.{name}): a path would overwrite it in every period; a scenario sets a stock's value at `from` through `parameters`"));
                return;
            }
            if set.iter().any(|&(p, _)| p == parameter) {
                x.diag_at(at, field, format!("the scenario also sets '{name}' in `parameters`: give it either a value or a path"));
                return;
            }
            let values = match v.get_ref() {
                toml::Value::Array(items) => {
                    if x.dynamics.horizon_known && items.len() != periods {
                        x.diag_at(at, field, format!("has {} values for {periods} periods: a path gives one value per period", items.len()));
                        return;
                    }
                    let mut list = Vec::with_capacity(items.len());
                    for (k, item) in items.iter().enumerate() {
                        let item = toml::Spanned::new(v.span(), item.clone());
                        list.push(x.value(&item, Allow::Parameters, &format!("{field}[{k}]")));
                    }
                    match list.into_iter().collect::<Option<Vec<Expr>>>() {
                        Some(list) => PathValues::List(list),
                        None => return,
                    }
                }
                _ => {
                    x.time = true;
                    let e = x.value(v, Allow::Parameters, field);
                    x.time = false;
                    match e {
                        Some(e) => PathValues::Expr(e),
                        None => return,
                    }
                }
            };
            x.dynamics.entries.push(Entry {
                parameter,
                offset: at,
                field: field.to_string(),
                path: Some(values.clone()),
            });
            paths.push(ParamPath {
                parameter,
                values,
                site: x.site(field.to_string(), at),
            });
        });
        paths
    }

    /// A scenario's `from` and `paths`, recorded for the scenario being pushed.
    pub(super) fn scenario_dynamics(
        &mut self,
        name: &str,
        sc: &'a ScenarioFile,
        set: &[(usize, f64)],
    ) {
        let f = format!("scenarios.{name}");
        if self.dynamics.periods.is_none() {
            for (given, at) in [
                (sc.from.as_ref().map(|v| v.span().start), "from"),
                (sc.paths.as_ref().map(|v| v.span().start), "paths"),
            ] {
                if let Some(off) = given {
                    self.diag_at(
                        off,
                        &format!("{f}.{at}"),
                        "the model has no [dynamics] section".into(),
                    );
                }
            }
            self.dynamics.scenarios.push(ScenarioDynamics::default());
            return;
        }
        let periods = self.dynamics.periods.unwrap_or(1);
        let from = match &sc.from {
            Some(v) => self
                .count(v, &format!("{f}.from"), 0, periods - 1)
                .unwrap_or(0),
            None => 0,
        };
        let paths = self.paths(&sc.paths, &format!("{f}.paths"), set);
        self.dynamics
            .scenarios
            .push(ScenarioDynamics { from, paths });
    }

    /// A target's `period`: `Some(None)` when it has none (the static solve), `None` when it is
    /// wrong.
    pub(super) fn target_period(&mut self, t: &TargetFile, field: &str) -> Option<Option<usize>> {
        let Some(v) = &t.period else {
            return Some(None);
        };
        match self.dynamics.periods {
            Some(periods) => self.count(v, field, 0, periods - 1).map(Some),
            None => {
                self.diag_at(
                    v.span().start,
                    &field,
                    "the model has no [dynamics] section".into(),
                );
                None
            }
        }
    }

    /// Hands the scenarios' dynamics to the model's.
    pub(super) fn finish_dynamics(&mut self, dynamics: &mut Option<Dynamics>) {
        if let Some(d) = dynamics {
            d.scenarios = std::mem::take(&mut self.dynamics.scenarios);
        }
    }

    /// The checks that need the whole model: period-0 replication of the model's paths, paths
    /// of parameters that do not move, and technology or endowments, not both.
    pub(super) fn check_dynamics(&mut self, model: &Model) {
        let Some(dynamics) = &model.dynamics else {
            return;
        };
        let n = model.parameters.len();
        let references = |e: &Expr| {
            let mut out = Vec::new();
            e.params(&mut out);
            out
        };
        // Everything calibration reads (the technology and the preferences), and endowments.
        let mut technology: Vec<(String, Vec<usize>)> = Vec::new();
        let mut endowments: Vec<(String, Vec<usize>)> = Vec::new();
        for s in &model.sectors {
            for np in &s.netputs {
                technology.push((np.site.part("quantity"), references(&s.expr(np.quantity))));
                technology.push((np.site.part("price"), references(&s.expr(np.price))));
            }
            for nest in &s.nests {
                technology.push((
                    format!("sectors.{}: elasticity of nest {}", s.name, nest.name),
                    references(&nest.elasticity),
                ));
            }
        }
        for h in &model.consumers {
            technology.push((
                format!("consumers.{}.elasticity", h.name),
                references(&h.elasticity),
            ));
            for d in &h.demands {
                let mut used = references(&d.quantity);
                used.extend(references(&d.price));
                if let Some(g) = &d.subsistence {
                    used.extend(references(g));
                }
                technology.push((d.site.to_string(), used));
            }
            for e in &h.endowments {
                endowments.push((e.site.to_string(), references(&e.quantity)));
            }
        }
        let mut moving_any = vec![false; n];
        let mut conflicts = Vec::new();
        for entry in &self.dynamics.entries {
            // The parameter and every derived parameter built on it.
            let mut moved = vec![false; n];
            moved[entry.parameter] = true;
            for i in entry.parameter + 1..n {
                if let Some(d) = &self.param_definitions[i] {
                    moved[i] = references(d).iter().any(|&j| moved[j]);
                }
            }
            let reach = |fields: &[(String, Vec<usize>)]| {
                fields
                    .iter()
                    .find(|(_, used)| used.iter().any(|&p| moved[p]))
                    .map(|(w, _)| w.clone())
            };
            let declared = self
                .dynamics
                .technology
                .iter()
                .any(|&(p, _)| p == entry.parameter);
            if let (false, Some(tech), Some(endowment)) =
                (declared, reach(&technology), reach(&endowments))
            {
                let name = &model.parameters[entry.parameter].name;
                conflicts.push((entry.offset, entry.field.clone(), format!(
                    "'{name}' moves along the path and reaches both the technology ({tech}) and an endowment ({endowment}): calibration would re-fit the benchmark shares to it in every period. Give the production or demand block its benchmark number (or a parameter of its own) and let only the endowment follow '{name}'; or, if '{name}' is productivity that is meant to move both, list it in [dynamics] technology"
                )));
            }
            for (i, m) in moved.iter().enumerate() {
                moving_any[i] |= m;
            }
        }
        for &(p, at) in &self.dynamics.technology {
            if !self.dynamics.entries.iter().any(|e| e.parameter == p) {
                let name = &model.parameters[p].name;
                conflicts.push((at, "dynamics.technology".to_string(), format!(
                    "'{name}' does not move along any path (no update or path of it): nothing to declare"
                )));
            }
        }
        for (at, field, message) in conflicts {
            self.diag_at(at, &field, message);
        }
        let params = model.param_values();
        let mut problems = Vec::new();
        for entry in &self.dynamics.entries {
            let Some(values) = &entry.path else { continue };
            let exprs: Vec<&Expr> = match values {
                PathValues::List(list) => list.iter().collect(),
                PathValues::Expr(e) => vec![e],
            };
            let uses_moving: Vec<&str> = exprs
                .iter()
                .flat_map(|e| references(e))
                .filter(|&p| moving_any[p])
                .map(|p| model.parameters[p].name.as_str())
                .collect();
            if let Some(first) = uses_moving.first() {
                problems.push((entry.offset, entry.field.clone(), format!(
                    "uses '{first}', which itself moves along the path: a path is evaluated at the start of its period from parameters that do not move"
                )));
                continue;
            }
            // The model's own paths must give the benchmark's values in period 0.
            if !entry.field.starts_with("dynamics.") {
                continue;
            }
            let value = params[entry.parameter];
            match values.value_at(&params, 0, dynamics.start_year) {
                Ok(v0) if (v0 - value).abs() <= 1e-12 * value.abs().max(1.0) => {}
                Ok(v0) => problems.push((entry.offset, entry.field.clone(), format!(
                    "gives {v0} in period 0, but the parameter is {value}: period 0 must replicate the benchmark (start the path at the parameter's value)"
                ))),
                Err(e) => problems.push((entry.offset, entry.field.clone(), format!("cannot evaluate in period 0: {e}"))),
            }
        }
        for (at, field, message) in problems {
            self.diag_at(at, &field, message);
        }
    }
}
