//! Typed ids: an index into one kind of list, so that a commodity can never be used where a
//! sector, a consumer or a solver variable is meant.
//!
//! Entity ids (`SectorId`, `CommodityId`, `ConsumerId`, `AuxId`) index the model's lists;
//! `VarId` indexes the solver's variable vector, whose layout `compile::Layout` defines. Each id
//! indexes `Vec`s and slices directly (`model.sectors[s]`).

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(u32);

        impl $name {
            /// The id of position `i`.
            #[inline]
            pub fn new(i: usize) -> Self {
                debug_assert!(i <= u32::MAX as usize);
                $name(i as u32)
            }
            /// The position this id stands for.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }
            /// Every id of a list of length `n`, in order.
            pub fn range(n: usize) -> impl DoubleEndedIterator<Item = $name> + ExactSizeIterator + Clone {
                (0..n).map($name::new)
            }
        }

        impl<T> std::ops::Index<$name> for [T] {
            type Output = T;
            #[inline]
            fn index(&self, id: $name) -> &T {
                &self[id.index()]
            }
        }
        impl<T> std::ops::IndexMut<$name> for [T] {
            #[inline]
            fn index_mut(&mut self, id: $name) -> &mut T {
                &mut self[id.index()]
            }
        }
        impl<T> std::ops::Index<$name> for Vec<T> {
            type Output = T;
            #[inline]
            fn index(&self, id: $name) -> &T {
                &self[id.index()]
            }
        }
        impl<T> std::ops::IndexMut<$name> for Vec<T> {
            #[inline]
            fn index_mut(&mut self, id: $name) -> &mut T {
                &mut self[id.index()]
            }
        }
    };
}

define_id!(
    /// A sector (production block) of the model.
    SectorId
);
define_id!(
    /// A commodity (price) of the model.
    CommodityId
);
define_id!(
    /// A consumer (income) of the model.
    ConsumerId
);
define_id!(
    /// An auxiliary variable of the model.
    AuxId
);
define_id!(
    /// A netput: a position in its sector's `netputs`.
    NetputId
);
define_id!(
    /// A position in the solver's variable vector (and of the function paired with it).
    VarId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_index_their_lists() {
        let v: Vec<&str> = ["a", "b", "c"].into();
        assert_eq!(v[SectorId::new(1)], "b");
        assert_eq!(v[..][CommodityId::new(2)], "c");
        let all: Vec<usize> = ConsumerId::range(3).map(|h| h.index()).collect();
        assert_eq!(all, vec![0, 1, 2]);
    }
}

/// The family of a variable and of the function paired with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarKind {
    Sector,
    Commodity,
    Consumer,
    Auxiliary,
}

impl VarKind {
    /// The family's name in reports (`sector`, `commodity`, ...).
    pub fn label(self) -> &'static str {
        match self {
            VarKind::Sector => "sector",
            VarKind::Commodity => "commodity",
            VarKind::Consumer => "consumer",
            VarKind::Auxiliary => "auxiliary",
        }
    }
}

/// A solver variable resolved to the model entity it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    Sector(SectorId),
    Commodity(CommodityId),
    Consumer(ConsumerId),
    Auxiliary(AuxId),
}

impl Var {
    pub fn kind(self) -> VarKind {
        match self {
            Var::Sector(_) => VarKind::Sector,
            Var::Commodity(_) => VarKind::Commodity,
            Var::Consumer(_) => VarKind::Consumer,
            Var::Auxiliary(_) => VarKind::Auxiliary,
        }
    }
}
