//! Values and expressions: numbers or expression strings resolved against the declared names,
//! with what may stand where (`Allow`) and calls checked against the table of functions.

use super::{Allow, Builder, Field, SamInput, Sign, Sym};
use crate::calibrate::ParamOnly;
use crate::expr::functions::{self, ArgKind, Builtin, Scope};
use crate::expr::{self, Expr, Func, Syntax};
use crate::ids::{AuxId, CommodityId, ConsumerId, SectorId, Var};
use crate::model::expand::template::Compiled;
use crate::model::file::RawValue;

impl<'a> Builder<'a> {
    /// Resolves a number or expression string; numbers must be finite. In an indexed model the
    /// string is a template, instantiated for the element being expanded: what reduces to a
    /// number (a table entry, a sum of them) is one without resolving anything.
    pub(super) fn value(&mut self, raw: &RawValue, allow: Allow, field: Field) -> Option<Expr> {
        let offset = raw.span().start;
        match raw.get_ref() {
            toml::Value::Integer(i) => Some(Expr::Num(*i as f64)),
            toml::Value::Float(f) if !f.is_finite() => {
                self.diag_at(offset, field, format!("must be a finite number, not {f}"));
                None
            }
            toml::Value::Float(f) => Some(Expr::Num(*f)),
            toml::Value::String(s) if self.indexed => {
                let c = self.template(s, offset, field)?;
                self.value_of_template(&c, offset, allow, field)
            }
            toml::Value::String(s) => {
                let base = offset + 1;
                match expr::parse(s) {
                    Ok(syn) => self.resolve(&syn, allow, field, base),
                    Err(e) => {
                        self.diag_at(
                            base + e.offset,
                            field,
                            format!("bad expression \"{s}\": {}", e.kind),
                        );
                        None
                    }
                }
            }
            other => {
                self.diag_at(
                    offset,
                    field,
                    format!(
                        "expected a number or an expression string, found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    /// A template (compiled from the value written at `offset`) instantiated for the current
    /// element and resolved.
    pub(super) fn value_of_template(
        &mut self,
        c: &Compiled<'a>,
        offset: usize,
        allow: Allow,
        field: Field,
    ) -> Option<Expr> {
        match self.instantiate(c, offset, field)? {
            crate::expr::Syntax::Num(x) if x.is_finite() => Some(Expr::Num(x)),
            syn => self.resolve(&syn, allow, field, offset + 1),
        }
    }

    pub(super) fn resolve(
        &mut self,
        syn: &Syntax,
        allow: Allow,
        field: Field,
        base: usize,
    ) -> Option<Expr> {
        match syn {
            Syntax::Num(v) => Some(Expr::Num(*v)),
            Syntax::Neg(a) => Some(Expr::Neg(Box::new(self.resolve(a, allow, field, base)?))),
            Syntax::Bin(op, a, b) => {
                let a = self.resolve(a, allow, field, base);
                let b = self.resolve(b, allow, field, base);
                Some(Expr::Bin(*op, Box::new(a?), Box::new(b?)))
            }
            Syntax::Name { name, span } => {
                if let Some(time) = crate::expr::Time::lookup(name) {
                    if self.time {
                        return Some(Expr::Time(time));
                    }
                    self.diag_at(
                        base + span.0,
                        field,
                        format!("'{name}' is the time of a dynamic path: it may stand only in [dynamics] updates and paths"),
                    );
                    return None;
                }
                let Some(sym) = self.symbols.get(name).copied() else {
                    self.diag_at(base + span.0, field, format!("unknown name '{name}'"));
                    return None;
                };
                match sym {
                    Sym::Param(i) => Some(Expr::Param(i)),
                    Sym::Indicator(i) => {
                        if allow >= Allow::Indicators {
                            Some(Expr::Indicator(i))
                        } else {
                            self.diag_at(base + span.0, field, format!("indicator '{name}' may stand only in targets and later indicators"));
                            None
                        }
                    }
                    _ if allow == Allow::Parameters => {
                        self.diag_at(
                            base + span.0,
                            field,
                            format!(
                                "'{name}' is a {}: only parameters may stand here",
                                sym.kind()
                            ),
                        );
                        None
                    }
                    Sym::Sector(i) => Some(Expr::Var(Var::Sector(SectorId::new(i)))),
                    Sym::Commodity(i) => Some(Expr::Var(Var::Commodity(CommodityId::new(i)))),
                    Sym::Consumer(i) => Some(Expr::Var(Var::Consumer(ConsumerId::new(i)))),
                    Sym::Aux(i) => Some(Expr::Var(Var::Auxiliary(AuxId::new(i)))),
                }
            }
            Syntax::Call { name, args, span } => self.call(name, args, *span, allow, field, base),
        }
    }

    /// Resolves a call through the table of functions (`expr::functions`).
    pub(super) fn call(
        &mut self,
        name: &str,
        args: &[Syntax],
        span: (usize, usize),
        allow: Allow,
        field: Field,
        base: usize,
    ) -> Option<Expr> {
        let at = base + span.0;
        let Some(fun) = functions::lookup(name) else {
            let known: Vec<&str> = functions::names().collect();
            self.diag_at(
                at,
                field,
                format!("unknown function '{name}' (known: {})", known.join(", ")),
            );
            return None;
        };
        if !fun.takes(args.len()) {
            self.diag_at(at, field, format!("{name}() is called as {}", fun.usage));
            return None;
        }
        if fun.scope == Scope::Point && allow < Allow::Functions {
            self.diag_at(
                at,
                field,
                format!("{name}() may stand only in auxiliary constraints, targets and indicators"),
            );
            return None;
        }
        if let Builtin::Math(m) = fun.builtin {
            let mut resolved = Vec::with_capacity(args.len());
            for a in args {
                resolved.push(self.resolve(a, allow, field, base));
            }
            return Some(Expr::Math(m, resolved.into_iter().collect::<Option<_>>()?));
        }
        // The other functions take names of entities.
        let mut arg_names = Vec::new();
        for a in args {
            match a {
                Syntax::Name { name, .. } => arg_names.push(name.as_str()),
                _ => {
                    self.diag_at(
                        at,
                        field,
                        format!("the arguments of {name}() must be names: {}", fun.usage),
                    );
                    return None;
                }
            }
        }
        if fun.builtin == Builtin::Sam {
            return self.sam_cell(arg_names[0], arg_names[1], at, field);
        }
        let lookup = |this: &mut Builder, n: &str, want: ArgKind| -> Option<usize> {
            let want_kind = match want {
                ArgKind::Sector => "sector",
                ArgKind::Commodity => "commodity",
                _ => "consumer",
            };
            match this.symbols.get(n).copied() {
                Some(Sym::Sector(i)) if want == ArgKind::Sector => Some(i),
                Some(Sym::Commodity(i)) if want == ArgKind::Commodity => Some(i),
                Some(Sym::Consumer(i)) if want == ArgKind::Consumer => Some(i),
                Some(s) => {
                    this.diag_at(
                        at,
                        field,
                        format!("{name}(): '{n}' is a {}, expected a {want_kind}", s.kind()),
                    );
                    None
                }
                None => {
                    this.diag_at(at, field, format!("{name}(): unknown {want_kind} '{n}'"));
                    None
                }
            }
        };
        let mut ids = [0usize; 2];
        let mut ok = true;
        for k in 0..2.min(arg_names.len()) {
            match lookup(self, arg_names[k], fun.arg_kind(k)) {
                Some(i) => ids[k] = i,
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let nest = match arg_names.get(2) {
            None => None,
            Some(n) => match self.nest_names.get(ids[0]).and_then(|m| m.get(*n)) {
                Some(i) => Some(*i),
                None => {
                    self.diag_at(at, field, format!("{name}(): sector has no nest '{n}'"));
                    return None;
                }
            },
        };
        let [a, b] = ids;
        Some(Expr::Func(match fun.builtin {
            Builtin::Demand => Func::Demand {
                sector: a,
                commodity: b,
                nest,
            },
            Builtin::Supply => Func::Supply {
                sector: a,
                commodity: b,
                nest,
            },
            Builtin::Final => Func::Final {
                consumer: a,
                commodity: b,
            },
            Builtin::Endowment => Func::Endowment {
                consumer: a,
                commodity: b,
            },
            Builtin::Revenue => Func::Revenue { consumer: a },
            Builtin::Welfare => Func::Welfare { consumer: a },
            Builtin::Ev => Func::Ev { consumer: a },
            Builtin::Math(_) | Builtin::Sam => unreachable!("handled above"),
        }))
    }

    /// A SAM cell `sam(ROW, COL)`: its number.
    pub(super) fn sam_cell(
        &mut self,
        row: &str,
        col: &str,
        at: usize,
        field: Field,
    ) -> Option<Expr> {
        let sam = match &self.sam {
            SamInput::Read { sam, .. } => sam,
            // The file's problem is reported once, at the [sam] table.
            SamInput::Failed { .. } => return None,
            SamInput::Absent => {
                self.diag_at(
                    at,
                    field,
                    "sam() needs a [sam] table naming the SAM file".into(),
                );
                return None;
            }
        };
        match sam.get(row, col) {
            Some(v) => Some(Expr::Num(v)),
            None => {
                let msg = format!(
                    "sam({row}, {col}): no such account in the SAM (accounts: {})",
                    sam.accounts().join(", ")
                );
                self.diag_at(at, field, msg);
                None
            }
        }
    }

    /// A parameter-only value that must evaluate now (with the model's parameters).
    pub(super) fn number_now(&mut self, e: &Expr, offset: usize, field: Field) -> Option<f64> {
        match e.eval(&ParamOnly(&self.params)) {
            Ok(v) if v.is_finite() => Some(v),
            Ok(v) => {
                self.diag_at(offset, field, format!("evaluates to {v}"));
                None
            }
            Err(err) => {
                self.diag_at(offset, field, format!("cannot evaluate: {err}"));
                None
            }
        }
    }

    pub(super) fn check_sign(
        &mut self,
        e: &Option<Expr>,
        raw: &RawValue,
        field: Field,
        rule: Sign,
    ) {
        let Some(e) = e else { return };
        let offset = raw.span().start;
        let Some(v) = self.number_now(e, offset, field) else {
            return;
        };
        let bad = match rule {
            Sign::NonNegative => v < 0.0,
            Sign::Positive => v <= 0.0,
        };
        if bad {
            self.sign_error(offset, field, rule, v);
        }
    }

    /// The message for a value `v` of the wrong sign.
    pub(super) fn sign_error(&mut self, offset: usize, field: Field, rule: Sign, v: f64) {
        let what = match rule {
            Sign::NonNegative => "must not be negative",
            Sign::Positive => "must be positive",
        };
        self.diag_at(offset, field, format!("{what} (is {v})"));
    }

    /// A bound: a value as [`Builder::value`], or `inf` / `-inf` (never `nan`).
    pub(super) fn bound(&mut self, raw: &RawValue, field: Field) -> Option<Expr> {
        match raw.get_ref() {
            toml::Value::Float(f) if f.is_infinite() => Some(Expr::Num(*f)),
            _ => self.value(raw, Allow::Parameters, field),
        }
    }

    /// An elasticity: a non-negative parameter value, 0 when absent.
    pub(super) fn elasticity(&mut self, v: &Option<RawValue>, field: Field) -> Expr {
        match v {
            None => Expr::Num(0.0),
            Some(v) => {
                let e = self.value(v, Allow::Parameters, field);
                self.check_sign(&e, v, field, Sign::NonNegative);
                e.unwrap_or(Expr::Num(0.0))
            }
        }
    }
}
