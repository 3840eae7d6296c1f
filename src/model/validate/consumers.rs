//! Consumers: final demands (CES or, as an extension, Stone–Geary) and endowments, each one
//! entry or one per element of its `over` sets.

use super::{Allow, Builder, Element, Part, Sign};
use crate::expr::Expr;
use crate::model::file::{ConsumerFile, ModelFile};
use crate::model::{Consumer, ConsumerRole, Endowment, FinalDemand};

impl<'a> Builder<'a> {
    /// Every consumer with its demands and endowments.
    pub(super) fn consumers(
        &mut self,
        raw: &'a ModelFile,
        elements: &[Element<'a>],
    ) -> Vec<Consumer> {
        let mut consumers = Vec::with_capacity(elements.len());
        for el in elements {
            let c = &raw.consumers[el.block];
            let consumer = self.within(el, |x| x.consumer_block(&el.name, el.offset, c.get_ref()));
            consumers.push(consumer);
        }
        consumers
    }

    fn consumer_block(&mut self, name: &str, off: usize, c: &'a ConsumerFile) -> Consumer {
        let f = |x: &str| format!("consumers.{name}.{x}");
        let elasticity = match &c.elasticity {
            Some(v) => {
                let e = self.value(v, Allow::Parameters, &f("elasticity"));
                self.check_sign(&e, v, &f("elasticity"), Sign::NonNegative);
                e.unwrap_or(Expr::Num(1.0))
            }
            None => Expr::Num(1.0),
        };
        if c.demands.is_empty() {
            self.diag_at(
                off,
                &f("demands"),
                format!("consumer {name} needs at least one final demand"),
            );
        }
        let mut demands = Vec::new();
        for (k, d) in c.demands.iter().enumerate() {
            let d = d.get_ref();
            let entry = f(&format!("demands[{k}]"));
            let Some(dims) = self.over(&d.over, &entry) else {
                continue;
            };
            let over = !dims.is_empty();
            self.each(&dims, |x| {
                let qf = Part(&entry, "quantity");
                let quantity = x.value(&d.quantity, Allow::Parameters, &qf);
                if over && matches!(quantity, Some(Expr::Num(q)) if q == 0.0) {
                    return;
                }
                x.check_sign(&quantity, &d.quantity, &qf, Sign::NonNegative);
                let commodity = x.commodity(&d.commodity, &Part(&entry, "commodity"));
                let price = match &d.price {
                    Some(p) => {
                        let pf = Part(&entry, "price");
                        let e = x.value(p, Allow::Parameters, &pf);
                        x.check_sign(&e, p, &pf, Sign::Positive);
                        e
                    }
                    None => Some(Expr::Num(1.0)),
                };
                // Extension: a subsistence quantity makes the consumer's demand Stone–Geary.
                let subsistence = d.subsistence.as_ref().map(|g| {
                    let gf = Part(&entry, "subsistence");
                    let e = x.value(g, Allow::Parameters, &gf);
                    x.check_sign(&e, g, &gf, Sign::NonNegative);
                    e
                });
                if let (Some(commodity), Some(quantity), Some(price)) = (commodity, quantity, price)
                {
                    demands.push(FinalDemand {
                        site: x.site(entry.clone(), d.quantity.span().start),
                        commodity,
                        quantity,
                        price,
                        subsistence: subsistence.flatten(),
                    });
                }
            });
        }
        let mut endowments = Vec::new();
        for (k, d) in c.endowments.iter().enumerate() {
            let d = d.get_ref();
            let entry = f(&format!("endowments[{k}]"));
            let Some(dims) = self.over(&d.over, &entry) else {
                continue;
            };
            let over = !dims.is_empty();
            self.each(&dims, |x| {
                let quantity = x.value(&d.quantity, Allow::Variables, &Part(&entry, "quantity"));
                if over && matches!(quantity, Some(Expr::Num(q)) if q == 0.0) {
                    return;
                }
                let commodity = x.commodity(&d.commodity, &Part(&entry, "commodity"));
                if let (Some(commodity), Some(quantity)) = (commodity, quantity) {
                    endowments.push(Endowment {
                        site: x.site(entry.clone(), d.quantity.span().start),
                        commodity,
                        quantity,
                    });
                }
            });
        }
        let role = match &c.role {
            None => ConsumerRole::Household,
            Some(r) => ConsumerRole::parse(r.get_ref()).unwrap_or_else(|| {
                self.diag_at(
                    r.span().start,
                    &f("role"),
                    format!(
                        "unknown role '{}' (roles: {})",
                        r.get_ref(),
                        ConsumerRole::NAMES.join(", ")
                    ),
                );
                ConsumerRole::Household
            }),
        };
        Consumer {
            name: name.to_string(),
            description: c.description.clone().unwrap_or_default(),
            role,
            elasticity,
            demands,
            endowments,
        }
    }
}
