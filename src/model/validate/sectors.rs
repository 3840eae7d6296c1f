//! Sectors: nest trees (names first, so `demand(S, C, NEST)` resolves anywhere), netputs with
//! their taxes, and start levels. Nests, netputs and taxes may be declared over sets; an entry
//! over sets is the hot path of a large indexed model (one netput per non-zero of its data), so
//! what does not depend on the entry's own indices is resolved once per entry, not per element.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::{Allow, Builder, Element, Field, Part, Sign, Sym};
use crate::expr::Expr;
use crate::model::expand::template::{Compiled, NameTpl};
use crate::model::expand::SetData;
use crate::model::file::{ModelFile, NetputFile, RawValue, SectorFile};
use crate::model::{Commodity, Nest, Netput, Sector, Tax, Value};

/// A value of an entry over sets that may not depend on the entry's indices: then it is
/// resolved once (`Same`), otherwise per element from its compiled template (`Each`).
enum Once<'a, T> {
    Same(Option<T>),
    Each(Rc<Compiled<'a>>),
}

impl<'a> Builder<'a> {
    /// Registers every sector's nest names (`s` and `t` are the top nests; a nest over sets is
    /// one per element) and keeps each sector's nest elements for [`Builder::sectors`].
    pub(super) fn nest_names(
        &mut self,
        raw: &'a ModelFile,
        sectors: &[Element<'a>],
    ) -> Vec<Vec<Element<'a>>> {
        let mut all = Vec::with_capacity(sectors.len());
        for el in sectors {
            let s = raw.sectors[el.block].get_ref();
            let (map, nests) = self.within(el, |x| {
                let mut map = HashMap::new();
                map.insert("s".to_string(), 0usize);
                map.insert("t".to_string(), 1usize);
                let mut nests = Vec::new();
                for (k, n) in s.nests.iter().enumerate() {
                    let n = n.get_ref();
                    let field = format!("sectors.{}.nests[{k}].name", el.name);
                    let at = n.name.span().start;
                    let Some(dims) = x.over(&n.over, &field) else {
                        continue;
                    };
                    x.each(&dims, |x| {
                        let Some(nn) = x.name(n.name.get_ref(), at, &field) else {
                            return;
                        };
                        if nn == "s" || nn == "t" {
                            x.diag_at(at, &field, "'s' and 't' are reserved nest names".into());
                        } else if map.contains_key(&nn) {
                            let msg = format!("duplicate nest name '{nn}' in sector {}", el.name);
                            x.diag_at(at, &field, msg);
                        } else {
                            map.insert(nn.clone(), nests.len() + 2);
                            nests.push(x.element(k, at, &dims, nn));
                        }
                    });
                }
                (map, nests)
            });
            self.nest_names.push(map);
            all.push(nests);
        }
        all
    }

    /// The element bound now over the innermost `dims`.
    fn element(
        &self,
        block: usize,
        offset: usize,
        dims: &[(&'a str, &'a SetData)],
        name: String,
    ) -> Element<'a> {
        let bound = &self.env.bound;
        Element {
            block,
            offset,
            dims: dims.to_vec(),
            at: bound[bound.len() - dims.len()..]
                .iter()
                .map(|b| b.pos)
                .collect(),
            name,
        }
    }

    /// Every sector with its nests and netputs.
    pub(super) fn sectors(
        &mut self,
        raw: &'a ModelFile,
        elements: &[Element<'a>],
        nests: &[Vec<Element<'a>>],
    ) -> Vec<Sector> {
        let mut sectors = Vec::with_capacity(elements.len());
        for (si, el) in elements.iter().enumerate() {
            let s = raw.sectors[el.block].get_ref();
            let sector = self.within(el, |x| x.sector(si, &el.name, s, &nests[si]));
            sectors.push(sector);
        }
        sectors
    }

    fn sector(
        &mut self,
        si: usize,
        name: &str,
        s: &'a SectorFile,
        nest_elements: &[Element<'a>],
    ) -> Sector {
        let prefix = format!("sectors.{name}");
        let f = |x: &str| format!("{prefix}.{x}");
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
        for ne in nest_elements {
            let n = s.nests[ne.block].get_ref();
            let nest = self.within(ne, |x| {
                let pf = f(&format!("nests[{}].parent", ne.block));
                let at = n.parent.span().start;
                let parent = match x.name(n.parent.get_ref(), at, &pf) {
                    Some(p) => match x.nest_names[si].get(&p) {
                        Some(&p) => Some(p),
                        None => {
                            let msg = format!("parent nest '{p}' does not exist in sector {name}");
                            x.diag_at(at, &pf, msg);
                            None
                        }
                    },
                    None => None,
                };
                let ef = f(&format!("nests[{}].elasticity", ne.block));
                Nest {
                    name: ne.name.clone(),
                    parent: parent.or(Some(0)),
                    elasticity: x.elasticity(&n.elasticity, &ef),
                    output: false,
                }
            });
            nests.push(nest);
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
                let ne = &nest_elements[k - 2];
                let n = s.nests[ne.block].get_ref();
                let field = f(&format!("nests[{}].parent", ne.block));
                let msg = format!("nest '{}' is part of a cycle of parents", nests[k].name);
                self.within(ne, |x| x.diag_at(n.parent.span().start, &field, msg));
                nests[k].parent = Some(0);
            } else {
                nests[k].output = cur == 1;
            }
        }
        let mut sector = Sector {
            name: name.to_string(),
            description: s.description.clone().unwrap_or_default(),
            start: Expr::Num(1.0),
            nests,
            netputs: Vec::new(),
            taxes: Vec::new(),
            exprs: Vec::new(),
        };
        // Sized once for every element of every entry: growing a list of thousands of netputs
        // sector after sector costs copies and fresh pages.
        let expected: usize = s
            .inputs
            .iter()
            .chain(&s.outputs)
            .map(|np| self.elements_of(&np.get_ref().over))
            .sum();
        sector.netputs.reserve_exact(expected);
        for (output, list, label) in [(false, &s.inputs, "inputs"), (true, &s.outputs, "outputs")] {
            for (k, np) in list.iter().enumerate() {
                let entry = f(&format!("{label}[{k}]"));
                self.netputs(&mut sector, si, np.get_ref(), output, &entry);
            }
        }
        // Entries pruned for zero quantities leave room: given back when it is much.
        if sector.netputs.capacity() > sector.netputs.len() + sector.netputs.len() / 8 {
            sector.netputs.shrink_to_fit();
        }
        sector
    }

    /// A value resolved once when it does not depend on `dims` (the entry's own indices).
    fn once<T>(
        &mut self,
        raw: &RawValue,
        dims: &[(&'a str, &'a SetData)],
        field: Field,
        resolve: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Once<'a, T> {
        if let toml::Value::String(text) = raw.get_ref() {
            if self.indexed && !dims.is_empty() {
                match self.template(text, raw.span().start, field) {
                    Some(c) if c.uses(dims) => return Once::Each(c),
                    Some(_) => {}
                    None => return Once::Same(None),
                }
            }
        }
        Once::Same(resolve(self))
    }

    /// A non-negative (or positive) parameter value: a quantity or a reference price; from its
    /// compiled template when it has one.
    fn signed(
        &mut self,
        raw: &RawValue,
        template: Option<&Compiled<'a>>,
        sign: Sign,
        field: Field,
    ) -> Option<Expr> {
        let e = match template {
            Some(c) => self.value_of_template(c, raw.span().start, Allow::Parameters, field)?,
            None => self.value(raw, Allow::Parameters, field)?,
        };
        match e {
            // Read as it is: no evaluation for the millions of numbers of a large model.
            Expr::Num(v) => {
                let bad = match sign {
                    Sign::NonNegative => v < 0.0,
                    Sign::Positive => v <= 0.0,
                };
                if bad {
                    self.sign_error(raw.span().start, field, sign, v);
                }
                Some(e)
            }
            e => {
                let e = Some(e);
                self.check_sign(&e, raw, field, sign);
                e
            }
        }
    }

    /// One entry of `inputs` or `outputs`: one netput, or one per element of its `over` sets
    /// (those whose quantity is a constant zero left out).
    fn netputs(
        &mut self,
        sector: &mut Sector,
        si: usize,
        np: &'a NetputFile,
        output: bool,
        entry: &str,
    ) {
        let Some(dims) = self.over(&np.over, &entry) else {
            return;
        };
        let over = !dims.is_empty();
        let site = Arc::new(self.site(entry.to_string(), np.quantity.span().start));
        let qf = Part(&entry, "quantity");
        let pf = Part(&entry, "price");
        let nf = Part(&entry, "nest");
        let quantity = self.once(&np.quantity, &dims, &qf, |x| {
            x.signed(&np.quantity, None, Sign::NonNegative, &qf)
        });
        // A quantity that is zero for every element: nothing to write.
        if over && matches!(quantity, Once::Same(Some(Expr::Num(q))) if q == 0.0) {
            return;
        }
        let quantity = match quantity {
            Once::Same(e) => Once::Same(e.map(|e| sector.value_of(e))),
            Once::Each(c) => Once::Each(c),
        };
        let price = match &np.price {
            None => Once::Same(Some(Value::num(1.0))),
            Some(p) => match self.once(p, &dims, &pf, |x| x.signed(p, None, Sign::Positive, &pf)) {
                Once::Same(e) => Once::Same(e.map(|e| sector.value_of(e))),
                Once::Each(c) => Once::Each(c),
            },
        };
        let default_nest = if output { 1 } else { 0 };
        let nest_over = np.nest.as_ref().is_some_and(|n| {
            self.indexed
                && NameTpl::new(n.get_ref(), self.index)
                    .indices()
                    .any(|(i, _)| dims.iter().any(|(d, _)| *d == i))
        });
        let nest = match &np.nest {
            None => Some(Some(default_nest)),
            Some(_) if nest_over => None,
            Some(n) => Some(self.nest_of(sector, si, n, output, &nf)),
        };
        let commodity = self.name_slot(&np.commodity);
        let cf = Part(&entry, "commodity");
        // Whether the quantity is read straight from a table, decided at the first element.
        let mut direct = None;
        self.each(&dims, |x| {
            let q = match &quantity {
                Once::Same(q) => *q,
                Once::Each(c) => {
                    let d = direct.get_or_insert_with(|| c.direct(&x.env));
                    match d {
                        Some(d) => match d.read(&x.env) {
                            q if over && q == 0.0 => return,
                            q if q < 0.0 => {
                                x.sign_error(np.quantity.span().start, &qf, Sign::NonNegative, q);
                                None
                            }
                            q => Some(Value::num(q)),
                        },
                        None => match x.signed(&np.quantity, Some(c), Sign::NonNegative, &qf) {
                            Some(Expr::Num(q)) if over && q == 0.0 => return,
                            Some(e) => Some(sector.value_of(e)),
                            None => None,
                        },
                    }
                }
            };
            let commodity = x.commodity_in(commodity, &np.commodity, &cf);
            let p = match &price {
                Once::Same(p) => *p,
                Once::Each(c) => {
                    let raw = np.price.as_ref().expect("a price that varies is written");
                    x.signed(raw, Some(c), Sign::Positive, &pf)
                        .map(|e| sector.value_of(e))
                }
            };
            let nest = match nest {
                Some(n) => n,
                None => {
                    let n = np.nest.as_ref().expect("a nest that varies is written");
                    x.nest_of(sector, si, n, output, &nf)
                }
            };
            let first_tax = sector.taxes.len();
            for (j, t) in np.taxes.iter().enumerate() {
                x.taxes(sector, t.get_ref(), &format!("{entry}.taxes[{j}]"));
            }
            if let (Some(commodity), Some(quantity), Some(price), Some(nest)) =
                (commodity, q, p, nest)
            {
                sector.netputs.push(Netput {
                    site: site.clone(),
                    commodity: crate::ids::CommodityId::new(commodity),
                    quantity,
                    price,
                    nest: nest as u32,
                    first_tax: first_tax as u32,
                    output,
                });
            } else {
                sector.taxes.truncate(first_tax);
            }
        });
    }

    /// The nest a netput names, on its side of the tree.
    fn nest_of(
        &mut self,
        sector: &Sector,
        si: usize,
        n: &toml::Spanned<String>,
        output: bool,
        field: Field,
    ) -> Option<usize> {
        let at = n.span().start;
        let name = self.name(n.get_ref(), at, field)?;
        match self.nest_names[si].get(&name).copied() {
            Some(ix) if sector.nests[ix].output == output => Some(ix),
            Some(_) => {
                let side = if output { "an output" } else { "an input" };
                let msg = format!(
                    "nest '{name}' is not {side} nest (inputs go under s, outputs under t)"
                );
                self.diag_at(at, field, msg);
                None
            }
            None => {
                let msg = format!("nest '{name}' does not exist in sector {}", sector.name);
                self.diag_at(at, field, msg);
                None
            }
        }
    }

    /// One entry of a netput's `taxes`: one tax, or one per element of its `over` sets (those
    /// whose rate is a constant zero left out).
    fn taxes(&mut self, sector: &mut Sector, t: &'a crate::model::file::TaxFile, entry: &str) {
        let Some(dims) = self.over(&t.over, &entry) else {
            return;
        };
        let over = !dims.is_empty();
        let rf = Part(&entry, "rate");
        self.each(&dims, |x| {
            let agent = x.consumer(&t.agent, &Part(&entry, "agent"));
            let rate = x.value(&t.rate, Allow::Variables, &rf);
            if over && matches!(rate, Some(Expr::Num(r)) if r == 0.0) {
                return;
            }
            if let (Some(agent), Some(rate)) = (agent, rate) {
                sector.taxes.push(Tax {
                    site: x.site(rf.to_string(), t.rate.span().start),
                    agent,
                    rate,
                });
            }
        });
    }

    /// Start levels of sectors and commodities (`start = { ... }`).
    pub(super) fn start_levels(
        &mut self,
        raw: &'a ModelFile,
        sectors: &mut [Sector],
        commodities: &mut [Commodity],
    ) {
        if let Some(t) = &raw.start {
            self.keyed(t, "start", |x, name, v, field| {
                let e = x.value(v, Allow::Parameters, field);
                x.check_sign(&e, v, field, Sign::NonNegative);
                match (x.symbols.get(name).copied(), e) {
                    (Some(Sym::Sector(i)), Some(e)) => sectors[i].start = e,
                    (Some(Sym::Commodity(i)), Some(e)) => commodities[i].start = e,
                    (Some(other), _) => {
                        let msg = format!(
                            "'{name}' is a {}: start levels are for sectors and commodities",
                            other.kind()
                        );
                        x.diag_at(v.span().start, field, msg)
                    }
                    (None, _) => x.diag_at(
                        v.span().start,
                        field,
                        format!("unknown sector or commodity '{name}'"),
                    ),
                }
            });
        }
    }
}
