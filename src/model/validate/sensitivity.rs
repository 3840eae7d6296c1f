//! `[sensitivity]` (extension): the varied parameters with their distributions, correlation
//! groups, the number of draws, the seed and the reported quantities. Every number may be a
//! parameter expression, evaluated with the model's own parameters; every problem is located.

use super::{Allow, Builder, Sym};
use crate::ids::{AuxId, CommodityId, ConsumerId, SectorId, Var};
use crate::model::file::{ModelFile, RawValue, SensitivityFile, VariedFile};
use crate::model::sensitivity::{Distribution, Group, Quantity, Sensitivity, Varied};

/// Draws when the section does not say.
pub const DEFAULT_DRAWS: usize = 1000;
/// Seed when the section does not say.
pub const DEFAULT_SEED: u64 = 1;

/// The distributions and the fields each takes (besides `distribution` and `description`).
const DISTRIBUTIONS: &[(&str, &[&str])] = &[
    ("uniform", &["min", "max"]),
    ("triangular", &["min", "mode", "max"]),
    ("normal", &["mean", "sd", "min", "max"]),
    ("lognormal", &["median", "log_sd", "min", "max"]),
    ("grid", &["values", "weights"]),
];

impl Builder<'_> {
    /// The `[sensitivity]` section, if any.
    pub(super) fn sensitivity(&mut self, raw: &ModelFile) -> Option<Sensitivity> {
        let section = raw.sensitivity.as_ref()?;
        let off = section.span().start;
        let s = section.get_ref();
        let draws = match &s.draws {
            None => Some(DEFAULT_DRAWS),
            Some(d) if *d.get_ref() >= 1 => Some(*d.get_ref() as usize),
            Some(d) => {
                self.diag_at(
                    d.span().start,
                    &"sensitivity.draws",
                    format!("must be at least 1 (is {})", d.get_ref()),
                );
                None
            }
        };
        let seed = match &s.seed {
            None => Some(DEFAULT_SEED),
            Some(v) if *v.get_ref() >= 0 => Some(*v.get_ref() as u64),
            Some(v) => {
                self.diag_at(
                    v.span().start,
                    &"sensitivity.seed",
                    format!("must not be negative (is {})", v.get_ref()),
                );
                None
            }
        };
        if s.parameters.is_empty() {
            self.diag_at(
                off,
                &"sensitivity.parameters",
                "a [sensitivity] section needs at least one parameter to vary ([sensitivity.parameters])".into(),
            );
        }
        // A key over sets (`"sigma[j]"`) varies every element, each with its own draws; the
        // names of the elements, in order, are what groups refer to.
        let mut varied = Vec::new();
        let mut names = Vec::new();
        let mut all_valid = true;
        for (key, v) in &s.parameters {
            self.each_name(
                key,
                v.span().start,
                "sensitivity.parameters",
                |x, name, _| {
                    names.push(name.to_string());
                    match x.varied(name, v) {
                        Some(one) => varied.push(one),
                        None => all_valid = false,
                    }
                },
            );
        }
        let groups = self.groups(s, &names, &varied, all_valid);
        let report = self.report(s);
        Some(Sensitivity {
            description: s.description.clone().unwrap_or_default(),
            draws: draws?,
            seed: seed?,
            varied,
            groups: groups?,
            report: report?,
        })
    }

    /// One varied parameter and its distribution.
    fn varied(&mut self, name: &str, v: &toml::Spanned<VariedFile>) -> Option<Varied> {
        let field = format!("sensitivity.parameters.{name}");
        let off = v.span().start;
        let parameter = match self.symbols.get(name).copied() {
            Some(Sym::Param(i)) => Some(i),
            Some(other) => {
                self.diag_at(
                    off,
                    &field,
                    format!("'{name}' is a {}, not a parameter", other.kind()),
                );
                None
            }
            None => {
                self.diag_at(off, &field, self.not_a_parameter(name));
                None
            }
        };
        let v = v.get_ref();
        let dist_name = v.distribution.get_ref().as_str();
        let Some((_, fields)) = DISTRIBUTIONS.iter().find(|(n, _)| *n == dist_name) else {
            let names: Vec<&str> = DISTRIBUTIONS.iter().map(|(n, _)| *n).collect();
            self.diag_at(
                v.distribution.span().start,
                &format!("{field}.distribution"),
                format!(
                    "unknown distribution '{dist_name}' (one of: {})",
                    names.join(", ")
                ),
            );
            return None;
        };
        // A field of another distribution is a mistake, never silently ignored.
        let given: [(&str, Option<usize>); 9] = [
            ("min", v.min.as_ref().map(|x| x.span().start)),
            ("max", v.max.as_ref().map(|x| x.span().start)),
            ("mode", v.mode.as_ref().map(|x| x.span().start)),
            ("mean", v.mean.as_ref().map(|x| x.span().start)),
            ("sd", v.sd.as_ref().map(|x| x.span().start)),
            ("median", v.median.as_ref().map(|x| x.span().start)),
            ("log_sd", v.log_sd.as_ref().map(|x| x.span().start)),
            ("values", v.values.as_ref().map(|x| x.span().start)),
            ("weights", v.weights.as_ref().map(|x| x.span().start)),
        ];
        let mut ok = true;
        for (key, at) in given {
            if let (Some(at), false) = (at, fields.contains(&key)) {
                self.diag_at(
                    at,
                    &format!("{field}.{key}"),
                    format!(
                        "a {dist_name} distribution takes {}, not `{key}`",
                        fields
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                ok = false;
            }
        }
        let central = parameter.map(|i| self.params[i]);
        let distribution = self.distribution(dist_name, v, &field, off, central);
        let line = self.lines.position(off).0;
        match (parameter, distribution, ok) {
            (Some(parameter), Some(distribution), true) => Some(Varied {
                parameter,
                distribution,
                line,
            }),
            _ => None,
        }
    }

    /// A number field: `Ok(None)` when absent, `Err(())` when given but invalid (reported).
    fn sensitivity_number(
        &mut self,
        raw: &Option<RawValue>,
        field: &str,
        key: &str,
    ) -> Result<Option<f64>, ()> {
        let Some(raw) = raw else { return Ok(None) };
        let f = format!("{field}.{key}");
        let e = self.value(raw, Allow::Parameters, &f).ok_or(())?;
        self.number_now(&e, raw.span().start, &f)
            .map(Some)
            .ok_or(())
    }

    fn distribution(
        &mut self,
        name: &str,
        v: &VariedFile,
        field: &str,
        off: usize,
        central: Option<f64>,
    ) -> Option<Distribution> {
        let min = self.sensitivity_number(&v.min, field, "min");
        let max = self.sensitivity_number(&v.max, field, "max");
        let need = |this: &mut Builder, x: Result<Option<f64>, ()>, key: &str| match x {
            Ok(Some(x)) => Some(x),
            Ok(None) => {
                this.diag_at(
                    off,
                    &format!("{field}.{key}"),
                    format!("a {name} distribution needs `{key}`"),
                );
                None
            }
            Err(()) => None,
        };
        // An omitted centre (mode, mean, median) is the parameter's own value.
        let centre = |this: &mut Builder, raw: &Option<RawValue>, key: &str| match this
            .sensitivity_number(raw, field, key)
        {
            Ok(None) => Ok(central),
            other => other,
        };
        let at = |raw: &Option<RawValue>| raw.as_ref().map_or(off, |r| r.span().start);
        let dist = match name {
            "uniform" => {
                let (lo, hi) = (need(self, min, "min")?, need(self, max, "max")?);
                self.ordered(lo, hi, at(&v.max), field)?;
                Distribution::Uniform { min: lo, max: hi }
            }
            "triangular" => {
                let mode = centre(self, &v.mode, "mode");
                let (lo, hi) = (need(self, min, "min")?, need(self, max, "max")?);
                let mode = need(self, mode, "mode")?;
                self.ordered(lo, hi, at(&v.max), field)?;
                if !(lo..=hi).contains(&mode) {
                    self.diag_at(
                        at(&v.mode),
                        &format!("{field}.mode"),
                        format!(
                            "mode {mode} lies outside [{lo}, {hi}]{}",
                            if v.mode.is_none() {
                                " (the mode defaults to the parameter's value)"
                            } else {
                                ""
                            }
                        ),
                    );
                    return None;
                }
                Distribution::Triangular {
                    min: lo,
                    mode,
                    max: hi,
                }
            }
            "normal" | "lognormal" => {
                let (centre_key, spread_key) = if name == "normal" {
                    ("mean", "sd")
                } else {
                    ("median", "log_sd")
                };
                let (centre_raw, spread_raw) = if name == "normal" {
                    (&v.mean, &v.sd)
                } else {
                    (&v.median, &v.log_sd)
                };
                let c = centre(self, centre_raw, centre_key);
                let spread = self.sensitivity_number(spread_raw, field, spread_key);
                let c = need(self, c, centre_key)?;
                let spread = need(self, spread, spread_key)?;
                let (lo, hi) = (min.ok()?, max.ok()?);
                let (lo, hi) = (lo.unwrap_or(f64::NEG_INFINITY), hi.unwrap_or(f64::INFINITY));
                if spread <= 0.0 {
                    self.diag_at(
                        at(spread_raw),
                        &format!("{field}.{spread_key}"),
                        format!("must be positive (is {spread})"),
                    );
                    return None;
                }
                if name == "lognormal" && c <= 0.0 {
                    self.diag_at(
                        at(centre_raw),
                        &format!("{field}.median"),
                        format!("a lognormal median must be positive (is {c})"),
                    );
                    return None;
                }
                if v.min.is_some() && v.max.is_some() {
                    self.ordered(lo, hi, at(&v.max), field)?;
                }
                let d = if name == "normal" {
                    Distribution::Normal {
                        mean: c,
                        sd: spread,
                        min: lo,
                        max: hi,
                    }
                } else {
                    Distribution::LogNormal {
                        median: c,
                        log_sd: spread,
                        min: lo,
                        max: hi,
                    }
                };
                let mass = crate::sweep::draws::truncated_mass(&d);
                if mass.is_nan() || mass < 1e-12 {
                    self.diag_at(
                        at(&v.min),
                        &format!("{field}.min"),
                        format!("the range [{lo}, {hi}] has no probability under this {name} distribution (mass {mass:.1e})"),
                    );
                    return None;
                }
                d
            }
            _ => self.grid(v, field, off)?,
        };
        Some(dist)
    }

    /// `lo < hi`, or a located message.
    fn ordered(&mut self, lo: f64, hi: f64, at: usize, field: &str) -> Option<()> {
        if lo < hi {
            Some(())
        } else {
            self.diag_at(
                at,
                &format!("{field}.max"),
                format!("max {hi} must be above min {lo}"),
            );
            None
        }
    }

    fn grid(&mut self, v: &VariedFile, field: &str, off: usize) -> Option<Distribution> {
        let Some(raw_values) = &v.values else {
            self.diag_at(
                off,
                &format!("{field}.values"),
                "a grid distribution needs `values`".into(),
            );
            return None;
        };
        let list = |this: &mut Builder, raws: &[RawValue], key: &str| {
            let mut out = Vec::new();
            let mut ok = true;
            for (k, r) in raws.iter().enumerate() {
                let f = format!("{field}.{key}[{k}]");
                match this
                    .value(r, Allow::Parameters, &f)
                    .and_then(|e| this.number_now(&e, r.span().start, &f))
                {
                    Some(x) => out.push(x),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        };
        let values = list(self, raw_values.get_ref(), "values");
        if raw_values.get_ref().is_empty() {
            self.diag_at(
                raw_values.span().start,
                &format!("{field}.values"),
                "a grid needs at least one value".into(),
            );
            return None;
        }
        let weights = match &v.weights {
            None => Some(vec![1.0; raw_values.get_ref().len()]),
            Some(w) => {
                let ws = list(self, w.get_ref(), "weights")?;
                let f = format!("{field}.weights");
                if ws.len() != raw_values.get_ref().len() {
                    self.diag_at(
                        w.span().start,
                        &f,
                        format!(
                            "{} weights for {} values",
                            ws.len(),
                            raw_values.get_ref().len()
                        ),
                    );
                    return None;
                }
                if ws.iter().any(|&x| x < 0.0) || ws.iter().sum::<f64>() <= 0.0 {
                    self.diag_at(
                        w.span().start,
                        &f,
                        "weights must not be negative and must not all be zero".into(),
                    );
                    return None;
                }
                Some(ws)
            }
        };
        let (values, weights) = (values?, weights?);
        let total: f64 = weights.iter().sum();
        Some(Distribution::Grid {
            values,
            weights: weights.iter().map(|w| w / total).collect(),
        })
    }

    /// Correlation groups: members are varied parameters (a name over sets, `"sigma[j]"`, is
    /// every element), each in one group at most, and the correlation keeps the copula's matrix
    /// positive semi-definite (−1/(n−1) ≤ ρ ≤ 1). `names` are the varied parameters' names in
    /// the order of `varied`.
    fn groups(
        &mut self,
        s: &SensitivityFile,
        names: &[String],
        varied: &[Varied],
        all_valid: bool,
    ) -> Option<Vec<Group>> {
        let position: std::collections::HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(k, n)| (n.as_str(), k))
            .collect();
        let mut groups = Vec::new();
        let mut ok = true;
        let mut grouped: Vec<Option<usize>> = vec![None; names.len()];
        for (k, g) in s.groups.iter().enumerate() {
            let field = format!("sensitivity.groups[{k}]");
            let g = g.get_ref();
            let mut members = Vec::new();
            let mut listed = 0;
            for p in g.parameters.get_ref() {
                let prefix = format!("{field}.parameters");
                self.each_name(p.get_ref(), p.span().start, &prefix, |x, name, _| {
                    listed += 1;
                    let Some(&pos) = position.get(name) else {
                        x.diag_at(
                            p.span().start,
                            &prefix,
                            format!(
                                "'{name}' is not varied: list it in [sensitivity.parameters] first"
                            ),
                        );
                        ok = false;
                        return;
                    };
                    match grouped[pos] {
                        Some(other) if other == k => {
                            x.diag_at(
                                p.span().start,
                                &prefix,
                                format!("'{name}' is listed twice"),
                            );
                            ok = false;
                        }
                        Some(other) => {
                            x.diag_at(
                                p.span().start,
                                &prefix,
                                format!("'{name}' is already in sensitivity.groups[{other}]: a parameter is in one group at most"),
                            );
                            ok = false;
                        }
                        None => {
                            grouped[pos] = Some(k);
                            members.push(pos);
                        }
                    }
                });
            }
            if listed < 2 {
                self.diag_at(
                    g.parameters.span().start,
                    &format!("{field}.parameters"),
                    "a group needs at least two parameters".into(),
                );
                ok = false;
            }
            let f = format!("{field}.correlation");
            let rho = self
                .value(&g.correlation, Allow::Parameters, &f)
                .and_then(|e| self.number_now(&e, g.correlation.span().start, &f));
            let n = listed.max(2) as f64;
            let lowest = -1.0 / (n - 1.0);
            match rho {
                Some(r) if (lowest..=1.0).contains(&r) => groups.push(Group {
                    members,
                    correlation: r,
                }),
                Some(r) => {
                    self.diag_at(
                        g.correlation.span().start,
                        &f,
                        format!(
                            "{r} is outside [{lowest}, 1], where one correlation for every pair of {n} parameters is possible"
                        ),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        // Positions refer to `varied`, which holds every parameter only when all were valid.
        (ok && all_valid && varied.len() == names.len()).then_some(groups)
    }

    /// The reported quantities: names of variables and indicators, and `ev(H)`.
    fn report(&mut self, s: &SensitivityFile) -> Option<Vec<Quantity>> {
        let Some(list) = &s.report else {
            return Some(Vec::new());
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (k, item) in list.get_ref().iter().enumerate() {
            let written = item.get_ref().trim();
            let field = format!("sensitivity.report[{k}]");
            let at = item.span().start;
            // `ev(H)` reports a consumer's EV; a name over sets (`Y[j]`, `ev(RA[h])`) every
            // element.
            let ev = written
                .strip_prefix("ev(")
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim);
            self.each_name(ev.unwrap_or(written), at, &field, |x, name, _| {
                let q = if ev.is_some() {
                    match x.symbols.get(name).copied() {
                        Some(Sym::Consumer(i)) => Some(Quantity::Ev(i)),
                        _ => {
                            x.diag_at(at, &field, format!("'{name}' in ev(...) is not a consumer"));
                            None
                        }
                    }
                } else {
                    x.reported_variable(name, at, &field)
                };
                match q {
                    Some(q) if out.contains(&q) => {
                        x.diag_at(at, &field, format!("'{name}' is listed twice"));
                        ok = false;
                    }
                    Some(q) => out.push(q),
                    None => ok = false,
                }
            });
        }
        ok.then_some(out)
    }

    /// A reported variable or indicator by name.
    fn reported_variable(&mut self, name: &str, at: usize, field: &str) -> Option<Quantity> {
        match self.symbols.get(name).copied() {
            Some(Sym::Sector(i)) => Some(Quantity::Variable(Var::Sector(SectorId::new(i)))),
            Some(Sym::Commodity(i)) => {
                Some(Quantity::Variable(Var::Commodity(CommodityId::new(i))))
            }
            Some(Sym::Consumer(i)) => Some(Quantity::Variable(Var::Consumer(ConsumerId::new(i)))),
            Some(Sym::Aux(i)) => Some(Quantity::Variable(Var::Auxiliary(AuxId::new(i)))),
            Some(Sym::Indicator(i)) => Some(Quantity::Indicator(i)),
            Some(Sym::Param(_)) => {
                let msg = format!(
                    "'{name}' is a parameter: report variables, indicators or ev(CONSUMER)"
                );
                self.diag_at(at, &field, msg);
                None
            }
            None => {
                let msg =
                    format!("unknown quantity '{name}' (a variable, an indicator or ev(CONSUMER))");
                self.diag_at(at, &field, msg);
                None
            }
        }
    }
}
