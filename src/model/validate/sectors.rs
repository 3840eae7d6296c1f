//! Sectors: nest trees (names first, so `demand(S, C, NEST)` resolves anywhere), netputs with
//! their taxes, and start levels.

use std::collections::HashMap;

use super::{Allow, Builder, Sign, Sym};
use crate::expr::Expr;
use crate::model::file::ModelFile;
use crate::model::{Commodity, Nest, Netput, Sector, Tax};

impl Builder {
    /// Registers every sector's nest names (`s` and `t` are the top nests).
    pub(super) fn nest_names(&mut self, raw: &ModelFile) {
        for (name, s) in &raw.sectors {
            let mut map = HashMap::new();
            map.insert("s".to_string(), 0usize);
            map.insert("t".to_string(), 1usize);
            for (k, n) in s.get_ref().nests.iter().enumerate() {
                let nn = n.get_ref().name.get_ref();
                let field = format!("sectors.{name}.nests[{k}].name");
                if nn == "s" || nn == "t" {
                    self.diag_at(
                        n.get_ref().name.span().start,
                        &field,
                        "'s' and 't' are reserved nest names".into(),
                    );
                } else if map.insert(nn.clone(), k + 2).is_some() {
                    self.diag_at(
                        n.get_ref().name.span().start,
                        &field,
                        format!("duplicate nest name '{nn}' in sector {name}"),
                    );
                }
            }
            self.nest_names.push(map);
        }
    }

    /// Every sector with its nests and netputs.
    pub(super) fn sectors(&mut self, raw: &ModelFile) -> Vec<Sector> {
        let mut sectors = Vec::new();
        for (si, (name, s)) in raw.sectors.iter().enumerate() {
            let s = s.get_ref();
            let f = |x: &str| format!("sectors.{name}.{x}");
            let mut nests = vec![
                Nest {
                    name: "s".into(),
                    parent: None,
                    elasticity: self.elasticity(&s.elasticity, &f("elasticity")),
                    output: false,
                },
                Nest {
                    name: "t".into(),
                    parent: None,
                    elasticity: self.elasticity(&s.transformation, &f("transformation")),
                    output: true,
                },
            ];
            for (k, n) in s.nests.iter().enumerate() {
                let n = n.get_ref();
                let pf = f(&format!("nests[{k}].parent"));
                let parent = match self.nest_names[si].get(n.parent.get_ref()) {
                    Some(&p) => Some(p),
                    None => {
                        self.diag_at(
                            n.parent.span().start,
                            &pf,
                            format!(
                                "parent nest '{}' does not exist in sector {name}",
                                n.parent.get_ref()
                            ),
                        );
                        None
                    }
                };
                nests.push(Nest {
                    name: n.name.get_ref().clone(),
                    parent: parent.or(Some(0)),
                    elasticity: self
                        .elasticity(&n.elasticity, &f(&format!("nests[{k}].elasticity"))),
                    output: false,
                });
            }
            // Cycle check and input/output side of each nest.
            for k in 2..nests.len() {
                let mut cur = k;
                let mut steps = 0;
                while let Some(p) = nests[cur].parent {
                    cur = p;
                    steps += 1;
                    if steps > nests.len() {
                        break;
                    }
                }
                if steps > nests.len() {
                    let n = &s.nests[k - 2];
                    self.diag_at(
                        n.get_ref().parent.span().start,
                        &f(&format!("nests[{}].parent", k - 2)),
                        format!("nest '{}' is part of a cycle of parents", nests[k].name),
                    );
                    nests[k].parent = Some(0);
                } else {
                    nests[k].output = cur == 1;
                }
            }
            let mut sector = Sector {
                name: name.clone(),
                description: s.description.clone().unwrap_or_default(),
                start: Expr::Num(1.0),
                nests,
                netputs: Vec::new(),
                taxes: Vec::new(),
                exprs: Vec::new(),
            };
            for (output, list, label) in
                [(false, &s.inputs, "inputs"), (true, &s.outputs, "outputs")]
            {
                for (k, np) in list.iter().enumerate() {
                    let np = np.get_ref();
                    let pf = |x: &str| f(&format!("{label}[{k}].{x}"));
                    let commodity = self.commodity(&np.commodity, &pf("commodity"));
                    let qf = pf("quantity");
                    let quantity = self.value(&np.quantity, Allow::Parameters, &qf);
                    self.check_sign(&quantity, &np.quantity, &qf, Sign::NonNegative);
                    let price = match &np.price {
                        Some(p) => {
                            let e = self.value(p, Allow::Parameters, &pf("price"));
                            self.check_sign(&e, p, &pf("price"), Sign::Positive);
                            e
                        }
                        None => Some(Expr::Num(1.0)),
                    };
                    let nest = match &np.nest {
                        None => Some(if output { 1 } else { 0 }),
                        Some(n) => match self.nest_names[si].get(n.get_ref()).copied() {
                            Some(ix) if sector.nests[ix].output == output => Some(ix),
                            Some(_) => {
                                let side = if output { "an output" } else { "an input" };
                                self.diag_at(n.span().start, &pf("nest"), format!("nest '{}' is not {side} nest (inputs go under s, outputs under t)", n.get_ref()));
                                None
                            }
                            None => {
                                self.diag_at(
                                    n.span().start,
                                    &pf("nest"),
                                    format!(
                                        "nest '{}' does not exist in sector {name}",
                                        n.get_ref()
                                    ),
                                );
                                None
                            }
                        },
                    };
                    let first_tax = sector.taxes.len();
                    for (j, t) in np.taxes.iter().enumerate() {
                        let t = t.get_ref();
                        let af = pf(&format!("taxes[{j}].agent"));
                        let agent = match self.symbols.get(t.agent.get_ref()) {
                            Some(Sym::Consumer(h)) => Some(*h),
                            Some(other) => {
                                let msg = format!(
                                    "tax agent '{}' is a {}, expected a consumer",
                                    t.agent.get_ref(),
                                    other.kind()
                                );
                                self.diag_at(t.agent.span().start, &af, msg);
                                None
                            }
                            None => {
                                self.diag_at(
                                    t.agent.span().start,
                                    &af,
                                    format!("unknown consumer '{}'", t.agent.get_ref()),
                                );
                                None
                            }
                        };
                        let rate =
                            self.value(&t.rate, Allow::Variables, &pf(&format!("taxes[{j}].rate")));
                        if let (Some(agent), Some(rate)) = (agent, rate) {
                            sector.taxes.push(Tax {
                                site: self
                                    .site(pf(&format!("taxes[{j}].rate")), t.rate.span().start),
                                agent,
                                rate,
                            });
                        }
                    }
                    if let (Some(commodity), Some(quantity), Some(price), Some(nest)) =
                        (commodity, quantity, price, nest)
                    {
                        let site = self.site(f(&format!("{label}[{k}]")), np.quantity.span().start);
                        let quantity = sector.value_of(quantity);
                        let price = sector.value_of(price);
                        let taxes = (first_tax as u32, sector.taxes.len() as u32);
                        sector.netputs.push(Netput {
                            site: std::sync::Arc::new(site),
                            commodity: crate::ids::CommodityId::new(commodity),
                            quantity,
                            price,
                            nest: nest as u32,
                            taxes,
                            output,
                        });
                    } else {
                        sector.taxes.truncate(first_tax);
                    }
                }
            }
            sectors.push(sector);
        }
        sectors
    }

    /// Start levels of sectors and commodities (`start = { ... }`).
    pub(super) fn start_levels(
        &mut self,
        raw: &ModelFile,
        sectors: &mut [Sector],
        commodities: &mut [Commodity],
    ) {
        if let Some(t) = &raw.start {
            for (name, v) in self.entries(t) {
                let field = format!("start.{name}");
                let e = self.value(v, Allow::Parameters, &field);
                self.check_sign(&e, v, &field, Sign::NonNegative);
                match (self.symbols.get(name).copied(), e) {
                    (Some(Sym::Sector(i)), Some(e)) => sectors[i].start = e,
                    (Some(Sym::Commodity(i)), Some(e)) => commodities[i].start = e,
                    (Some(other), _) => {
                        let msg = format!(
                            "'{name}' is a {}: start levels are for sectors and commodities",
                            other.kind()
                        );
                        self.diag_at(v.span().start, &field, msg)
                    }
                    (None, _) => self.diag_at(
                        v.span().start,
                        &field,
                        format!("unknown sector or commodity '{name}'"),
                    ),
                }
            }
        }
    }
}
