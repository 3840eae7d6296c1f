//! Auxiliary variables (bounds, start, constraint) and indicators (an extension).

use super::{Allow, Builder, Sym};
use crate::calibrate::ParamOnly;
use crate::expr::Expr;
use crate::model::file::{ModelFile, RawValue};
use crate::model::{Auxiliary, Indicator};

impl Builder {
    /// Every auxiliary variable; bounds and start are checked against each other.
    pub(super) fn auxiliaries(&mut self, raw: &ModelFile) -> Vec<Auxiliary> {
        let mut auxiliaries = Vec::new();
        for (name, a) in &raw.auxiliary {
            let a = a.get_ref();
            let f = |x: &str| format!("auxiliary.{name}.{x}");
            let or = |e: Option<Expr>, default: f64| e.unwrap_or(Expr::Num(default));
            let start = or(
                a.start
                    .as_ref()
                    .and_then(|v| self.value(v, Allow::Parameters, &f("start"))),
                0.0,
            );
            let lower = or(
                a.lower.as_ref().and_then(|v| self.bound(v, &f("lower"))),
                f64::NEG_INFINITY,
            );
            let upper = or(
                a.upper.as_ref().and_then(|v| self.bound(v, &f("upper"))),
                f64::INFINITY,
            );
            let at = |v: &Option<RawValue>| {
                v.as_ref()
                    .map(|v| v.span().start)
                    .unwrap_or(a.constraint.span().start)
            };
            // Each with the model's parameters: never NaN, the start finite.
            let mut now = |e: &Expr, raw: &Option<RawValue>, x: &str| -> Option<f64> {
                let v = e.eval(&ParamOnly(&self.params)).ok()?;
                let problem = if v.is_nan() {
                    "evaluates to NaN".to_string()
                } else if x == "start" && !v.is_finite() {
                    format!("must be finite (is {v})")
                } else {
                    return Some(v);
                };
                self.diag_at(at(raw), &f(x), problem);
                None
            };
            let (s, l, u) = (
                now(&start, &a.start, "start"),
                now(&lower, &a.lower, "lower"),
                now(&upper, &a.upper, "upper"),
            );
            if let (Some(s), Some(l), Some(u)) = (s, l, u) {
                let off = at(&a.start);
                if l > u {
                    self.diag_at(
                        at(&a.lower),
                        &f("lower"),
                        format!("lower bound {l} exceeds upper bound {u}"),
                    );
                } else if s < l || s > u {
                    self.diag_at(
                        off,
                        &f("start"),
                        format!("start {s} lies outside the bounds [{l}, {u}]"),
                    );
                }
            }
            let constraint = self
                .value(&a.constraint, Allow::Functions, &f("constraint"))
                .unwrap_or(Expr::Num(0.0));
            auxiliaries.push(Auxiliary {
                site: self.site(f("constraint"), a.constraint.span().start),
                name: name.clone(),
                description: a.description.clone().unwrap_or_default(),
                start,
                lower,
                upper,
                constraint,
            });
        }
        auxiliaries
    }

    /// Named indicators, each may use the earlier ones.
    pub(super) fn indicators(&mut self, raw: &ModelFile) -> Vec<Indicator> {
        let mut indicators = Vec::new();
        if let Some(t) = &raw.indicators {
            for (name, v) in self.entries(t) {
                let field = format!("indicators.{name}");
                let e = self.value(v, Allow::Indicators, &field);
                match &e {
                    Some(e) => {
                        self.check_indicator_depth(e, v.span().start, &field);
                    }
                    None => self.indicator_measures.push((1, 1.0)),
                }
                self.declare(
                    name,
                    Sym::Indicator(indicators.len()),
                    v.span().start,
                    &field,
                );
                let text = match v.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                indicators.push(Indicator {
                    name: name.clone(),
                    description: String::new(),
                    expr: e.unwrap_or(Expr::Num(f64::NAN)),
                    text,
                });
            }
        }
        indicators
    }
}
