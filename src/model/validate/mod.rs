//! `Source` → `Model`: resolves names to ids, checks what may stand where, and collects every
//! diagnostic with its line. One module per section of the file; this one holds the shared
//! state (declared names, diagnostics), parameters and the declarations of the layout.

mod auxiliaries;
mod consumers;
mod dynamics;
mod expressions;
mod presentation;
mod scenarios;
mod sectors;
mod sensitivity;
mod targets;

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;

use super::file::{ModelFile, RawTable, RawValue};
use super::load::{self, LineIndex, SamInput, Source};
use super::*;
use crate::expr::functions;
use crate::model::sensitivity::Quantity;

/// Reads and validates a model file.
pub fn load(path: &Path) -> Result<Model, LoadError> {
    validate(&expand::expand(load::read(path)?)?)
}

/// Validates model text; `path` names it in messages and anchors relative data paths.
pub fn load_str(text: &str, path: &Path) -> Result<Model, LoadError> {
    validate(&expand::expand(load::parse(text.to_string(), path)?)?)
}

/// Validates what the load stage read into a [`Model`], or every problem found.
pub fn validate(src: &Source) -> Result<Model, LoadError> {
    let mut b = Builder {
        lines: LineIndex::new(&src.text),
        diags: src.unknown_fields.clone(),
        symbols: IndexMap::new(),
        sam: SamInput::Absent,
        params: Vec::new(),
        param_definitions: Vec::new(),
        nest_names: Vec::new(),
        indicator_measures: Vec::new(),
        time: false,
        dynamics: Default::default(),
    };
    let model = b.build(src);
    if b.diags.is_empty() {
        Ok(model)
    } else {
        b.diags.sort_by_key(|d| (d.line, d.column));
        Err(LoadError {
            file: src.path.display().to_string(),
            diagnostics: b.diags,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sym {
    Param(usize),
    Commodity(usize),
    Sector(usize),
    Consumer(usize),
    Aux(usize),
    Indicator(usize),
}

impl Sym {
    fn kind(&self) -> &'static str {
        match self {
            Sym::Param(_) => "parameter",
            Sym::Commodity(_) => "commodity",
            Sym::Sector(_) => "sector",
            Sym::Consumer(_) => "consumer",
            Sym::Aux(_) => "auxiliary variable",
            Sym::Indicator(_) => "indicator",
        }
    }
}

/// What may stand in an expression field, from the narrowest to the widest.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Allow {
    /// Quantities, reference prices, elasticities, start levels, bounds, fix and target values.
    Parameters,
    /// Tax rates and endowment quantities.
    Variables,
    /// Auxiliary constraints.
    Functions,
    /// Targets and indicators: also earlier indicators.
    Indicators,
}

struct Builder {
    lines: LineIndex,
    diags: Vec<Diagnostic>,
    symbols: IndexMap<String, Sym>,
    sam: SamInput,
    params: Vec<f64>,
    /// Per parameter: its definition when it is derived from earlier parameters.
    param_definitions: Vec<Option<Expr>>,
    /// Per sector: nest name → index.
    nest_names: Vec<HashMap<String, usize>>,
    /// Per indicator so far: depth and node count with the indicators it uses counted in.
    indicator_measures: Vec<(usize, f64)>,
    /// Whether `t` and `year` may stand in the expression being resolved (dynamic updates and
    /// paths only).
    time: bool,
    /// `[dynamics]` as read so far.
    dynamics: dynamics::State,
}

/// How deep an expression may nest counting the indicators it uses (each evaluated through
/// its own expression): bounds the recursion of evaluating it.
pub const MAX_INDICATOR_DEPTH: usize = 4 * crate::expr::MAX_DEPTH;

fn is_description(key: &str) -> bool {
    key == "description"
}

impl Builder {
    fn diag_at(&mut self, offset: usize, field: &str, message: String) {
        let d = self.lines.diagnostic(offset, field, message);
        self.diags.push(d);
    }

    /// Records an indicator's (or checks a target's) measure: an error past
    /// [`MAX_INDICATOR_DEPTH`] levels through the indicators it uses.
    fn check_indicator_depth(&mut self, e: &Expr, offset: usize, field: &str) -> (usize, f64) {
        let m = {
            let known = &self.indicator_measures;
            e.measure(&|i| known.get(i).copied().unwrap_or((1, 1.0)))
        };
        if m.0 > MAX_INDICATOR_DEPTH {
            self.diag_at(
                offset,
                field,
                format!(
                    "nests {} levels deep through the indicators it uses (at most {MAX_INDICATOR_DEPTH})",
                    m.0
                ),
            );
        }
        if field.starts_with("indicators.") {
            // Past the limit the indicator is reported once; those built on it are not
            // reported again for the same depth.
            let recorded = if m.0 > MAX_INDICATOR_DEPTH {
                (1, 1.0)
            } else {
                m
            };
            self.indicator_measures.push(recorded);
        }
        m
    }

    /// The site of a field written at `offset`.
    fn site(&self, field: String, offset: usize) -> Site {
        Site {
            field,
            line: self.lines.position(offset).0,
        }
    }

    fn declare(&mut self, name: &str, sym: Sym, offset: usize, field: &str) {
        if !valid_name(name) {
            self.diag_at(
                offset,
                field,
                format!("'{name}' is not a valid name ([A-Za-z_][A-Za-z0-9_]*, or NAME[label,...] for an element)"),
            );
        }
        if functions::lookup(name).is_some() {
            self.diag_at(
                offset,
                field,
                format!("'{name}' is the name of a function; function names are reserved"),
            );
        }
        if crate::expr::Time::lookup(name).is_some() {
            self.diag_at(
                offset,
                field,
                format!("'{name}' is reserved: in dynamic expressions `t` is the period and `year` its year"),
            );
        }
        if let Some(prev) = self.symbols.get(name) {
            let msg = format!(
                "duplicate name '{name}': already declared as a {}; names are unique across parameters, commodities, sectors, consumers and auxiliaries",
                prev.kind()
            );
            self.diag_at(offset, field, msg);
        } else {
            self.symbols.insert(name.to_string(), sym);
        }
    }

    fn entries<'a>(&mut self, t: &'a RawTable) -> Vec<(&'a String, &'a RawValue)> {
        t.get_ref()
            .iter()
            .filter(|(k, _)| !is_description(k))
            .collect()
    }

    /// The SAM the load stage read: checked for balance, its cells then available to `sam()`.
    fn sam(&mut self, src: &Source) -> Option<SamSource> {
        let section = src.file.sam.as_ref()?;
        let off = section.get_ref().file.span().start;
        match &src.sam {
            SamInput::Read { source, sam } => {
                let tol = section.get_ref().tolerance.unwrap_or(1e-9);
                if let Err(e) = sam.check_balanced(tol) {
                    self.diag_at(off, "sam.file", format!("{e}"));
                }
                self.sam = SamInput::Read {
                    source: source.clone(),
                    sam: sam.clone(),
                };
                Some(source.clone())
            }
            SamInput::Failed { source, error } => {
                self.diag_at(off, "sam.file", error.clone());
                // Cells of a SAM that could not be read are not reported again one by one.
                self.sam = SamInput::Failed {
                    source: source.clone(),
                    error: error.clone(),
                };
                Some(source.clone())
            }
            SamInput::Absent => None,
        }
    }

    /// Parameters, each a number or an expression of earlier parameters.
    fn parameters(&mut self, raw: &ModelFile) -> Vec<Parameter> {
        let mut parameters = Vec::new();
        // A parameter whose definition could not be built (its fault, e.g. an unreadable SAM
        // cell, is already reported) has no value; neither has any later parameter that reads
        // it, and evaluating those would only repeat the one defect as many messages
        // ("division by zero" by a placeholder 0).
        let mut unavailable: Vec<bool> = Vec::new();
        if let Some(t) = &raw.parameters {
            for (name, v) in self.entries(t) {
                let field = format!("parameters.{name}");
                let off = v.span().start;
                let e = self.value(v, Allow::Parameters, &field);
                let blocked = e
                    .as_ref()
                    .is_none_or(|e| e.reads_param(&|i| unavailable[i]));
                unavailable.push(blocked);
                let val = e
                    .as_ref()
                    .filter(|_| !blocked)
                    .and_then(|e| self.number_now(e, off, &field))
                    .unwrap_or(0.0);
                self.declare(name, Sym::Param(parameters.len()), off, &field);
                let definition = e.filter(|e| e.constant().is_none());
                self.param_definitions.push(definition.clone());
                parameters.push(Parameter {
                    name: name.clone(),
                    description: String::new(),
                    value: val,
                    definition,
                });
                self.params.push(val);
            }
        }
        parameters
    }

    /// Applies parameter overrides to `values` and evaluates again every derived parameter not
    /// overridden (as `Model::rederive` does once the model is built).
    fn rederive(
        &self,
        values: &mut [f64],
        overrides: &[(usize, f64)],
    ) -> Result<(), crate::expr::EvalError> {
        let definitions = self.param_definitions.iter().map(Option::as_ref);
        super::rederive(definitions, values, overrides).map_err(|(_, e)| e)
    }

    /// Declares every commodity, sector, consumer and auxiliary (the layout order), so any
    /// field may name any of them.
    fn declarations(&mut self, raw: &ModelFile) -> Vec<Commodity> {
        if raw.commodities.get_ref().is_empty() {
            self.diag_at(
                raw.commodities.span().start,
                "commodities",
                "a model needs at least one commodity".into(),
            );
        }
        if raw.consumers.is_empty() {
            self.diag_at(
                raw.model.span().start,
                "consumers",
                "a model needs at least one consumer (a [consumers.NAME] table with demands and endowments)".into(),
            );
        }
        let mut commodities = Vec::new();
        for c in raw.commodities.get_ref() {
            self.declare(
                c.get_ref(),
                Sym::Commodity(commodities.len()),
                c.span().start,
                "commodities",
            );
            commodities.push(Commodity {
                name: c.get_ref().clone(),
                description: String::new(),
                start: Expr::Num(1.0),
            });
        }
        for (i, (name, s)) in raw.sectors.iter().enumerate() {
            self.declare(
                name,
                Sym::Sector(i),
                s.span().start,
                &format!("sectors.{name}"),
            );
        }
        for (i, (name, c)) in raw.consumers.iter().enumerate() {
            self.declare(
                name,
                Sym::Consumer(i),
                c.span().start,
                &format!("consumers.{name}"),
            );
        }
        for (i, (name, a)) in raw.auxiliary.iter().enumerate() {
            self.declare(
                name,
                Sym::Aux(i),
                a.span().start,
                &format!("auxiliary.{name}"),
            );
        }
        commodities
    }

    fn build(&mut self, src: &Source) -> Model {
        let raw = &src.file;
        let sam = self.sam(src);
        let parameters = self.parameters(raw);
        let mut commodities = self.declarations(raw);
        self.nest_names(raw);
        let mut sectors = self.sectors(raw);
        self.start_levels(raw, &mut sectors, &mut commodities);
        let consumers = self.consumers(raw);
        let auxiliaries = self.auxiliaries(raw);
        let indicators = self.indicators(raw);
        let mut dynamics = self.dynamics(raw);
        let numeraire = raw
            .model
            .get_ref()
            .numeraire
            .as_ref()
            .and_then(|n| self.normaliser(n, "model.numeraire"));
        let scenarios = self.scenarios(raw);
        let targets = self.targets(raw, &scenarios);
        let mut parameters = parameters;
        let mut indicators = indicators;
        self.descriptions(raw, &mut commodities, &mut parameters, &mut indicators);
        let presentation = self.presentation(raw);
        self.finish_dynamics(&mut dynamics);
        let sensitivity = self.sensitivity(raw);
        let mut model = Model {
            name: raw.model.get_ref().name.get_ref().clone(),
            description: raw.model.get_ref().description.clone().unwrap_or_default(),
            path: src.path.clone(),
            parameters,
            commodities,
            sectors,
            consumers,
            auxiliaries,
            numeraire,
            scenarios,
            targets,
            indicators,
            sam,
            sensitivity: None,
            presentation,
            dynamics,
        };
        self.check_dynamics(&model);
        // A section that names no quantity reports every one.
        model.sensitivity = sensitivity.map(|mut s| {
            if s.report.is_empty() {
                s.report = Quantity::all(&model);
            }
            s
        });
        model
    }

    fn commodity(&mut self, name: &toml::Spanned<String>, field: &str) -> Option<usize> {
        match self.symbols.get(name.get_ref()).copied() {
            Some(Sym::Commodity(i)) => Some(i),
            Some(other) => {
                let msg = format!(
                    "'{}' is a {}, expected a commodity",
                    name.get_ref(),
                    other.kind()
                );
                self.diag_at(name.span().start, field, msg);
                None
            }
            None => {
                self.diag_at(
                    name.span().start,
                    field,
                    format!(
                        "unknown commodity '{}' (declare it in `commodities`)",
                        name.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn normaliser(&mut self, n: &toml::Spanned<String>, field: &str) -> Option<Normaliser> {
        match self.symbols.get(n.get_ref()).copied() {
            Some(Sym::Commodity(i)) => Some(Normaliser::Commodity(i)),
            Some(Sym::Consumer(i)) => Some(Normaliser::Consumer(i)),
            Some(other) => {
                let msg = format!(
                    "numeraire '{}' is a {}: it must be a commodity or a consumer",
                    n.get_ref(),
                    other.kind()
                );
                self.diag_at(n.span().start, field, msg);
                None
            }
            None => {
                self.diag_at(
                    n.span().start,
                    field,
                    format!("unknown numeraire '{}'", n.get_ref()),
                );
                None
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Sign {
    NonNegative,
    Positive,
}

/// A plain name (`[A-Za-z_][A-Za-z0-9_]*`) or an element of an indexed one (`Y[agr]`,
/// `x0[agr,srv]`), as expansion writes them.
pub(crate) fn valid_name(s: &str) -> bool {
    let (base, index) = match s.split_once('[') {
        Some((b, rest)) => match rest.strip_suffix(']') {
            Some(labels) => (b, Some(labels)),
            None => return false,
        },
        None => (s, None),
    };
    let mut ch = base.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && index.is_none_or(|labels| labels.split(',').all(crate::model::expand::valid_label))
}
