//! Targets: an expression, the scenario it is checked in, and a value with a tolerance or a range.

use super::{Allow, Builder, Sign};
use crate::expr::Expr;
use crate::model::file::{ModelFile, RawValue, TargetFile};
use crate::model::{Scenario, Target, TargetCheck};

impl<'a> Builder<'a> {
    /// Every target, resolved against the scenarios; a target over sets is one per element.
    pub(super) fn targets(&mut self, raw: &'a ModelFile, scenarios: &[Scenario]) -> Vec<Target> {
        let mut targets = Vec::new();
        for (k, t) in raw.targets.iter().enumerate() {
            let off = t.span().start;
            let t = t.get_ref();
            let field = format!("targets[{k}]");
            let Some(dims) = self.over(&t.over, &field) else {
                continue;
            };
            self.each(&dims, |x| {
                if let Some(target) = x.target(k, off, t, scenarios) {
                    targets.push(target);
                }
            });
        }
        targets
    }

    fn target(
        &mut self,
        k: usize,
        off: usize,
        t: &'a TargetFile,
        scenarios: &[Scenario],
    ) -> Option<Target> {
        let f = |x: &str| format!("targets[{k}].{x}");
        let scenario = match &t.scenario {
            None => Some(None),
            Some(s) if s.get_ref() == "benchmark" => Some(None),
            Some(s) => match scenarios.iter().position(|x| &x.name == s.get_ref()) {
                Some(i) => Some(Some(i)),
                None => {
                    self.diag_at(
                        s.span().start,
                        &f("scenario"),
                        format!("unknown scenario '{}'", s.get_ref()),
                    );
                    None
                }
            },
        };
        let expr = self.value(&t.expr, Allow::Indicators, &f("expr"));
        if let Some(e) = &expr {
            self.check_indicator_depth(e, t.expr.span().start, &f("expr"), false);
        }
        let text = self.text_of(&t.expr);
        let pv = |this: &mut Self, v: &Option<RawValue>, x: &str| {
            v.as_ref()
                .and_then(|v| this.value(v, Allow::Parameters, &f(x)))
        };
        let check = match (&t.value, &t.min, &t.max) {
            (Some(_), None, None) => {
                let value = pv(self, &t.value, "value");
                let tolerance = match &t.tolerance {
                    Some(raw) => {
                        let e = pv(self, &t.tolerance, "tolerance");
                        self.check_sign(&e, raw, &f("tolerance"), Sign::NonNegative);
                        e
                    }
                    None => Some(Expr::Num(1e-6)),
                };
                match (value, tolerance) {
                    (Some(value), Some(tolerance)) => Some(TargetCheck::Value { value, tolerance }),
                    _ => None,
                }
            }
            (None, None, None) => {
                self.diag_at(
                    off,
                    &f("value"),
                    "a target needs `value`, or `min` and/or `max`".into(),
                );
                None
            }
            (None, _, _) => {
                if t.tolerance.is_some() {
                    self.diag_at(
                        off,
                        &f("tolerance"),
                        "tolerance goes with `value`, not with min/max".into(),
                    );
                }
                // A bound that is given must resolve: a bad one is never silently dropped.
                let bound = |this: &mut Self, v: &Option<RawValue>, x: &str| match v {
                    None => Ok(None),
                    Some(raw) => this.bound(raw, &f(x)).map(Some).ok_or(()),
                };
                let min = bound(self, &t.min, "min");
                let max = bound(self, &t.max, "max");
                // Both are parameter values: compared with the model's parameters.
                if let (Ok(Some(lo)), Ok(Some(hi)), Some(lo_raw), Some(hi_raw)) =
                    (&min, &max, &t.min, &t.max)
                {
                    let lo = self.number_now(lo, lo_raw.span().start, &f("min"));
                    let hi = self.number_now(hi, hi_raw.span().start, &f("max"));
                    if let (Some(lo), Some(hi)) = (lo, hi) {
                        if lo > hi {
                            self.diag_at(
                                hi_raw.span().start,
                                &f("max"),
                                format!("max {hi} is below min {lo}"),
                            );
                        }
                    }
                }
                match (min, max) {
                    (Ok(min), Ok(max)) => Some(TargetCheck::Range { min, max }),
                    _ => None,
                }
            }
            (Some(_), _, _) => {
                self.diag_at(
                    off,
                    &f("value"),
                    "a target has either `value` or `min`/`max`, not both".into(),
                );
                None
            }
        };
        let period = self.target_period(t, &f("period"));
        let line = self.lines.position(off).0;
        let (Some(scenario), Some(expr), Some(check), Some(period)) =
            (scenario, expr, check, period)
        else {
            return None;
        };
        let sname = scenario
            .map(|i: usize| scenarios[i].name.clone())
            .unwrap_or_else(|| "benchmark".into());
        let name = match (&t.name, period) {
            (Some(n), _) if self.env.is_empty() => n.clone(),
            // One target per element: the element follows the written name.
            (Some(n), _) => format!("{n}{}", self.text_of_bindings()),
            (None, Some(k)) => format!("{sname} period {k}: {text}"),
            (None, None) => format!("{sname}: {text}"),
        };
        Some(Target {
            name,
            scenario,
            expr,
            text,
            check,
            line,
            period,
        })
    }
}
