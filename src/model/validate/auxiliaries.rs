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
            let bound = |this: &mut Builder, v: &Option<RawValue>, x: &str, default: f64| match v {
                Some(v) if x == "start" => this
                    .value(v, Allow::Parameters, &f(x))
                    .unwrap_or(Expr::Num(default)),
                Some(v) => this.bound(v, &f(x)).unwrap_or(Expr::Num(default)),
                None => Expr::Num(default),
            };
            let start = bound(self, &a.start, "start", 0.0);
            let lower = bound(self, &a.lower, "lower", f64::NEG_INFINITY);
            let upper = bound(self, &a.upper, "upper", f64::INFINITY);
            let ctx = ParamOnly(&self.params);
            let at = |v: &Option<RawValue>| {
                v.as_ref()
                    .map(|v| v.span().start)
                    .unwrap_or(a.constraint.span().start)
            };
            if let (Ok(s), Ok(l), Ok(u)) = (start.eval(&ctx), lower.eval(&ctx), upper.eval(&ctx)) {
                let off = at(&a.start);
                if s.is_nan() || l.is_nan() || u.is_nan() {
                    let which = if s.is_nan() {
                        "start"
                    } else if l.is_nan() {
                        "lower"
                    } else {
                        "upper"
                    };
                    let off = at(match which {
                        "start" => &a.start,
                        "lower" => &a.lower,
                        _ => &a.upper,
                    });
                    self.diag_at(off, &f(which), "evaluates to NaN".into());
                } else if !s.is_finite() {
                    self.diag_at(off, &f("start"), format!("must be finite (is {s})"));
                } else if l > u {
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
                    expr: e.unwrap_or(Expr::Num(f64::NAN)),
                    text,
                });
            }
        }
        indicators
    }
}
