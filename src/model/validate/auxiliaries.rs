//! Auxiliary variables (bounds, start, constraint) and indicators (an extension).

use super::{Allow, Builder, Element, Sym};
use crate::calibrate::ParamOnly;
use crate::expr::Expr;
use crate::model::file::{AuxFile, ModelFile, RawValue};
use crate::model::{Auxiliary, Indicator};

impl<'a> Builder<'a> {
    /// Every auxiliary variable; bounds and start are checked against each other.
    pub(super) fn auxiliaries(
        &mut self,
        raw: &'a ModelFile,
        elements: &[Element<'a>],
    ) -> Vec<Auxiliary> {
        let mut auxiliaries = Vec::with_capacity(elements.len());
        for el in elements {
            let a = raw.auxiliary[el.block].get_ref();
            let aux = self.within(el, |x| x.auxiliary(&el.name, a));
            auxiliaries.push(aux);
        }
        auxiliaries
    }

    fn auxiliary(&mut self, name: &str, a: &'a AuxFile) -> Auxiliary {
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
        Auxiliary {
            site: self.site(f("constraint"), a.constraint.span().start),
            name: name.to_string(),
            description: a.description.clone().unwrap_or_default(),
            start,
            lower,
            upper,
            constraint,
        }
    }

    /// Named indicators, each may use the earlier ones; a key over sets is one indicator per
    /// element.
    pub(super) fn indicators(&mut self, raw: &'a ModelFile) -> Vec<Indicator> {
        let mut indicators = Vec::new();
        if let Some(t) = &raw.indicators {
            self.keyed(t, "indicators", |x, name, v, field| {
                let e = x.value(v, Allow::Indicators, field);
                match &e {
                    Some(e) => {
                        x.check_indicator_depth(e, v.span().start, field, true);
                    }
                    None => x.indicator_measures.push((1, 1.0)),
                }
                x.declare(
                    name,
                    Sym::Indicator(indicators.len()),
                    v.span().start,
                    field,
                );
                let text = x.text_of(v);
                indicators.push(Indicator {
                    name: name.to_string(),
                    description: String::new(),
                    expr: e.unwrap_or(Expr::Num(f64::NAN)),
                    text,
                });
            });
        }
        indicators
    }
}
