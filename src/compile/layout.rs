//! The solver's variable layout, defined once: sectors (activity levels), commodities (prices),
//! consumers (incomes) and auxiliary variables, each in declaration order. Each variable is
//! paired with one function of its family (zero profit, market clearance, income balance,
//! constraint).

use crate::ids::{AuxId, CommodityId, ConsumerId, SectorId, VarId};
pub use crate::ids::{Var, VarKind};
use crate::model::Model;

/// Offsets of the four variable blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    sectors: usize,
    commodities: usize,
    consumers: usize,
    auxiliaries: usize,
}

impl Layout {
    pub fn of(model: &Model) -> Layout {
        Layout {
            sectors: model.sectors.len(),
            commodities: model.commodities.len(),
            consumers: model.consumers.len(),
            auxiliaries: model.auxiliaries.len(),
        }
    }
    /// Number of variables (and of functions).
    pub fn dim(&self) -> usize {
        self.sectors + self.commodities + self.consumers + self.auxiliaries
    }
    pub fn sector(&self, s: SectorId) -> VarId {
        VarId::new(s.index())
    }
    pub fn commodity(&self, c: CommodityId) -> VarId {
        VarId::new(self.sectors + c.index())
    }
    pub fn consumer(&self, h: ConsumerId) -> VarId {
        VarId::new(self.sectors + self.commodities + h.index())
    }
    pub fn auxiliary(&self, a: AuxId) -> VarId {
        VarId::new(self.sectors + self.commodities + self.consumers + a.index())
    }
    /// The entity a variable stands for.
    pub fn var(&self, v: VarId) -> Var {
        let i = v.index();
        let (s, c, h) = (self.sectors, self.commodities, self.consumers);
        if i < s {
            Var::Sector(SectorId::new(i))
        } else if i < s + c {
            Var::Commodity(CommodityId::new(i - s))
        } else if i < s + c + h {
            Var::Consumer(ConsumerId::new(i - s - c))
        } else {
            Var::Auxiliary(AuxId::new(i - s - c - h))
        }
    }
    pub fn kind(&self, v: VarId) -> VarKind {
        self.var(v).kind()
    }
    /// Every variable, in layout order.
    pub fn vars(&self) -> impl DoubleEndedIterator<Item = VarId> + ExactSizeIterator + Clone {
        VarId::range(self.dim())
    }
    /// The layout index of a variable entity.
    pub fn index_of(&self, v: Var) -> VarId {
        match v {
            Var::Sector(s) => self.sector(s),
            Var::Commodity(c) => self.commodity(c),
            Var::Consumer(h) => self.consumer(h),
            Var::Auxiliary(a) => self.auxiliary(a),
        }
    }
}

/// Names of variables and their functions, for messages and reports.
impl Layout {
    pub fn var_name<'m>(&self, model: &'m Model, v: VarId) -> &'m str {
        Self::entity_name(model, self.var(v))
    }
    /// The name of the entity a variable stands for.
    pub fn entity_name(model: &Model, v: Var) -> &str {
        match v {
            Var::Sector(s) => &model.sectors[s.index()].name,
            Var::Commodity(c) => &model.commodities[c.index()].name,
            Var::Consumer(h) => &model.consumers[h.index()].name,
            Var::Auxiliary(a) => &model.auxiliaries[a.index()].name,
        }
    }
    pub fn equation_name(&self, model: &Model, v: VarId) -> String {
        let name = self.var_name(model, v);
        match self.kind(v) {
            VarKind::Sector => format!("zero profit of {name}"),
            VarKind::Commodity => format!("market clearance of {name}"),
            VarKind::Consumer => format!("income balance of {name}"),
            VarKind::Auxiliary => format!("constraint of {name}"),
        }
    }
}
