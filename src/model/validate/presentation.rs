//! What reports need besides the economics (an extension): descriptions of names that have no
//! table of their own (commodities, parameters, indicators), the unit of money, the headline
//! quantities and the indicators that measure real GDP and real government revenue.

use super::{Builder, Sym};
use crate::ids::{AuxId, CommodityId, ConsumerId, SectorId, Var};
use crate::model::file::ModelFile;
use crate::model::{Commodity, Headline, Indicator, Parameter, Presentation, DEFAULT_UNIT};

impl Builder<'_> {
    /// `[descriptions]`: NAME = "text" for a commodity, parameter or indicator. Sectors,
    /// consumers and auxiliaries carry a `description` in their own table.
    pub(super) fn descriptions(
        &mut self,
        raw: &ModelFile,
        commodities: &mut [Commodity],
        parameters: &mut [Parameter],
        indicators: &mut [Indicator],
    ) {
        let Some(t) = &raw.descriptions else { return };
        for (name, text) in t.get_ref() {
            let field = format!("descriptions.{name}");
            let at = text.span().start;
            let slot = match self.symbols.get(name).copied() {
                Some(Sym::Commodity(i)) => &mut commodities[i].description,
                Some(Sym::Param(i)) => &mut parameters[i].description,
                Some(Sym::Indicator(i)) => &mut indicators[i].description,
                Some(other) => {
                    let msg = format!(
                        "'{name}' is a {}: describe it with `description` in its own table",
                        other.kind()
                    );
                    self.diag_at(at, &field, msg);
                    continue;
                }
                None => {
                    self.diag_at(at, &field, format!("unknown name '{name}'"));
                    continue;
                }
            };
            *slot = text.get_ref().clone();
        }
    }

    /// `unit`, `headline`, `gdp` and `revenue` of `[model]`.
    pub(super) fn presentation(&mut self, raw: &ModelFile) -> Presentation {
        let m = raw.model.get_ref();
        let unit = match &m.unit {
            Some(u) if u.get_ref().trim().is_empty() => {
                self.diag_at(u.span().start, &"model.unit", "the unit is empty".into());
                DEFAULT_UNIT.to_string()
            }
            Some(u) => u.get_ref().clone(),
            None => DEFAULT_UNIT.to_string(),
        };
        let mut headline = Vec::new();
        if let Some(h) = &m.headline {
            for (k, name) in h.get_ref().iter().enumerate() {
                let field = format!("model.headline[{k}]");
                let at = name.span().start;
                let item = match self.symbols.get(name.get_ref()).copied() {
                    Some(Sym::Sector(i)) => Headline::Var(Var::Sector(SectorId::new(i))),
                    Some(Sym::Commodity(i)) => Headline::Var(Var::Commodity(CommodityId::new(i))),
                    Some(Sym::Consumer(i)) => Headline::Var(Var::Consumer(ConsumerId::new(i))),
                    Some(Sym::Aux(i)) => Headline::Var(Var::Auxiliary(AuxId::new(i))),
                    Some(Sym::Indicator(i)) => Headline::Indicator(i),
                    Some(Sym::Param(_)) => {
                        self.diag_at(
                            at,
                            &field,
                            format!(
                                "'{name}' is a parameter: a headline is a variable or an indicator",
                                name = name.get_ref()
                            ),
                        );
                        continue;
                    }
                    None => {
                        self.diag_at(at, &field, format!("unknown name '{}'", name.get_ref()));
                        continue;
                    }
                };
                if headline.contains(&item) {
                    self.diag_at(at, &field, format!("'{}' is listed twice", name.get_ref()));
                } else {
                    headline.push(item);
                }
            }
        }
        let gdp = m
            .gdp
            .as_ref()
            .and_then(|g| self.indicator_named(g, "model.gdp"));
        let revenue = m
            .revenue
            .as_ref()
            .and_then(|r| self.indicator_named(r, "model.revenue"));
        Presentation {
            unit,
            headline,
            gdp,
            revenue,
        }
    }

    fn indicator_named(&mut self, name: &toml::Spanned<String>, field: &str) -> Option<usize> {
        match self.symbols.get(name.get_ref()).copied() {
            Some(Sym::Indicator(i)) => Some(i),
            Some(other) => {
                let msg = format!(
                    "'{}' is a {}: name an indicator (declared in [indicators])",
                    name.get_ref(),
                    other.kind()
                );
                self.diag_at(name.span().start, &field, msg);
                None
            }
            None => {
                let msg = format!("unknown indicator '{}'", name.get_ref());
                self.diag_at(name.span().start, &field, msg);
                None
            }
        }
    }
}
