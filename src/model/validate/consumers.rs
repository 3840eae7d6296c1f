//! Consumers: final demands (CES or, as an extension, Stone–Geary) and endowments.

use super::{Allow, Builder, Sign};
use crate::expr::Expr;
use crate::model::file::ModelFile;
use crate::model::{Consumer, ConsumerRole, Endowment, FinalDemand};

impl Builder {
    /// Every consumer with its demands and endowments.
    pub(super) fn consumers(&mut self, raw: &ModelFile) -> Vec<Consumer> {
        let mut consumers = Vec::new();
        for (name, c) in &raw.consumers {
            let off = c.span().start;
            let c = c.get_ref();
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
                let pf = |x: &str| f(&format!("demands[{k}].{x}"));
                let commodity = self.commodity(&d.commodity, &pf("commodity"));
                let quantity = self.value(&d.quantity, Allow::Parameters, &pf("quantity"));
                self.check_sign(&quantity, &d.quantity, &pf("quantity"), Sign::NonNegative);
                let price = match &d.price {
                    Some(p) => {
                        let e = self.value(p, Allow::Parameters, &pf("price"));
                        self.check_sign(&e, p, &pf("price"), Sign::Positive);
                        e
                    }
                    None => Some(Expr::Num(1.0)),
                };
                // Extension: a subsistence quantity makes the consumer's demand Stone–Geary.
                let subsistence = d.subsistence.as_ref().map(|g| {
                    let e = self.value(g, Allow::Parameters, &pf("subsistence"));
                    self.check_sign(&e, g, &pf("subsistence"), Sign::NonNegative);
                    e
                });
                if let (Some(commodity), Some(quantity), Some(price)) = (commodity, quantity, price)
                {
                    demands.push(FinalDemand {
                        site: self.site(f(&format!("demands[{k}]")), d.quantity.span().start),
                        commodity,
                        quantity,
                        price,
                        subsistence: subsistence.flatten(),
                    });
                }
            }
            let mut endowments = Vec::new();
            for (k, d) in c.endowments.iter().enumerate() {
                let d = d.get_ref();
                let pf = |x: &str| f(&format!("endowments[{k}].{x}"));
                let commodity = self.commodity(&d.commodity, &pf("commodity"));
                let quantity = self.value(&d.quantity, Allow::Variables, &pf("quantity"));
                if let (Some(commodity), Some(quantity)) = (commodity, quantity) {
                    endowments.push(Endowment {
                        site: self.site(f(&format!("endowments[{k}]")), d.quantity.span().start),
                        commodity,
                        quantity,
                    });
                }
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
            consumers.push(Consumer {
                name: name.clone(),
                description: c.description.clone().unwrap_or_default(),
                role,
                elasticity,
                demands,
                endowments,
            });
        }
        consumers
    }
}
