//! The table of expression functions: every function a model file may call, with its arity,
//! argument kinds, where it may stand, and (for the mathematical ones) its value and partial
//! derivatives. Validation resolves calls through [`lookup`], evaluation and printing go through
//! [`Builtin`]; adding a function is one row here plus its arm in [`Math`] (or, for a function of
//! the economy, one [`super::Func`] variant evaluated by the compiled system).
//!
//! Names of functions are reserved: no parameter, commodity, sector, consumer, auxiliary or
//! indicator may be called like one.

use super::EvalError;

/// What an argument of a function must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// Any expression allowed in the field where the call stands.
    Value,
    Sector,
    Commodity,
    Consumer,
    /// A nest of the sector named by the first argument.
    Nest,
    /// An account (row or column label) of the model's SAM.
    Account,
}

/// Mathematical functions of values: evaluated here, with gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Math {
    Ln,
    Exp,
    Sqrt,
    /// The largest argument; semismooth: the gradient is that of the first largest argument.
    Max,
    /// The smallest argument, as `Max`.
    Min,
}

/// Every function of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Math(Math),
    Demand,
    Supply,
    Final,
    Endowment,
    Revenue,
    Welfare,
    Ev,
    /// A SAM cell, replaced by its number at load.
    Sam,
}

/// Where a function may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Wherever its arguments may stand (parameters included).
    Anywhere,
    /// Only where functions of the equilibrium point may: auxiliary constraints, targets,
    /// indicators.
    Point,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub name: &'static str,
    pub builtin: Builtin,
    /// Argument kinds in order; the last `optional` of them may be left out.
    pub args: &'static [ArgKind],
    pub optional: usize,
    /// Whether more arguments of the last kind may follow.
    pub variadic: bool,
    pub scope: Scope,
    /// How a call is written, for messages and documentation.
    pub usage: &'static str,
    pub summary: &'static str,
}

impl Function {
    /// Whether a call with `n` arguments has the right arity.
    pub fn takes(&self, n: usize) -> bool {
        let max = self.args.len();
        let min = max - self.optional;
        n >= min && (n <= max || self.variadic)
    }

    /// The kind of argument `k` (the last kind repeats for variadic functions).
    pub fn arg_kind(&self, k: usize) -> ArgKind {
        self.args[k.min(self.args.len() - 1)]
    }
}

use ArgKind::{Account, Commodity, Consumer, Nest, Sector, Value};

/// The functions of the format, in the order the documentation lists them.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "ln",
        builtin: Builtin::Math(Math::Ln),
        args: &[Value],
        optional: 0,
        variadic: false,
        scope: Scope::Anywhere,
        usage: "ln(x)",
        summary: "natural logarithm; x > 0",
    },
    Function {
        name: "exp",
        builtin: Builtin::Math(Math::Exp),
        args: &[Value],
        optional: 0,
        variadic: false,
        scope: Scope::Anywhere,
        usage: "exp(x)",
        summary: "exponential",
    },
    Function {
        name: "sqrt",
        builtin: Builtin::Math(Math::Sqrt),
        args: &[Value],
        optional: 0,
        variadic: false,
        scope: Scope::Anywhere,
        usage: "sqrt(x)",
        summary: "square root; x >= 0",
    },
    Function {
        name: "max",
        builtin: Builtin::Math(Math::Max),
        args: &[Value, Value],
        optional: 0,
        variadic: true,
        scope: Scope::Anywhere,
        usage: "max(x, y, ...)",
        summary: "largest argument (semismooth: the gradient of the first largest)",
    },
    Function {
        name: "min",
        builtin: Builtin::Math(Math::Min),
        args: &[Value, Value],
        optional: 0,
        variadic: true,
        scope: Scope::Anywhere,
        usage: "min(x, y, ...)",
        summary: "smallest argument (semismooth: the gradient of the first smallest)",
    },
    Function {
        name: "demand",
        builtin: Builtin::Demand,
        args: &[Sector, Commodity, Nest],
        optional: 1,
        variadic: false,
        scope: Scope::Point,
        usage: "demand(SECTOR, COMMODITY[, NEST])",
        summary: "input quantity per unit of activity (under NEST when given)",
    },
    Function {
        name: "supply",
        builtin: Builtin::Supply,
        args: &[Sector, Commodity, Nest],
        optional: 1,
        variadic: false,
        scope: Scope::Point,
        usage: "supply(SECTOR, COMMODITY[, NEST])",
        summary: "output quantity per unit of activity (under NEST when given)",
    },
    Function {
        name: "final",
        builtin: Builtin::Final,
        args: &[Consumer, Commodity],
        optional: 0,
        variadic: false,
        scope: Scope::Point,
        usage: "final(CONSUMER, COMMODITY)",
        summary: "final demand of the consumer for the commodity",
    },
    Function {
        name: "endowment",
        builtin: Builtin::Endowment,
        args: &[Consumer, Commodity],
        optional: 0,
        variadic: false,
        scope: Scope::Point,
        usage: "endowment(CONSUMER, COMMODITY)",
        summary: "endowment quantity of the consumer in the commodity",
    },
    Function {
        name: "revenue",
        builtin: Builtin::Revenue,
        args: &[Consumer],
        optional: 0,
        variadic: false,
        scope: Scope::Point,
        usage: "revenue(CONSUMER)",
        summary: "tax revenue accruing to the consumer",
    },
    Function {
        name: "welfare",
        builtin: Builtin::Welfare,
        args: &[Consumer],
        optional: 0,
        variadic: false,
        scope: Scope::Point,
        usage: "welfare(CONSUMER)",
        summary: "utility level of the consumer (1 at the benchmark)",
    },
    Function {
        name: "ev",
        builtin: Builtin::Ev,
        args: &[Consumer],
        optional: 0,
        variadic: false,
        scope: Scope::Point,
        usage: "ev(CONSUMER)",
        summary: "Hicksian equivalent variation at benchmark prices",
    },
    Function {
        name: "sam",
        builtin: Builtin::Sam,
        args: &[Account, Account],
        optional: 0,
        variadic: false,
        scope: Scope::Anywhere,
        usage: "sam(ROW, COL)",
        summary: "a cell of the model's SAM (extension), a number at load",
    },
];

/// The table row of a function name.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The table row of a builtin.
pub fn function(builtin: Builtin) -> &'static Function {
    FUNCTIONS
        .iter()
        .find(|f| f.builtin == builtin)
        .expect("every builtin has a row in FUNCTIONS")
}

/// The names of all functions, for messages.
pub fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

impl Math {
    pub fn name(self) -> &'static str {
        function(Builtin::Math(self)).name
    }

    /// Value of a unary function.
    pub fn unary(self, x: f64) -> Result<f64, EvalError> {
        let domain = |ok: bool, v: f64| {
            if ok {
                Ok(v)
            } else {
                Err(EvalError::Domain {
                    function: self.name(),
                    argument: x,
                })
            }
        };
        match self {
            Math::Ln => domain(x > 0.0, x.ln()),
            Math::Exp => Ok(x.exp()),
            Math::Sqrt => domain(x >= 0.0, x.sqrt()),
            Math::Max | Math::Min => unreachable!("max and min take two or more arguments"),
        }
    }

    /// Derivative of a unary function at `x` whose value is `v`.
    pub fn unary_derivative(self, x: f64, v: f64) -> f64 {
        match self {
            Math::Ln => 1.0 / x,
            Math::Exp => v,
            Math::Sqrt => 0.5 / v,
            Math::Max | Math::Min => unreachable!("max and min take two or more arguments"),
        }
    }

    /// True when `candidate` replaces `best` as the selected argument of `max` or `min` (the
    /// first extreme argument wins ties, so the gradient pattern chosen is deterministic).
    pub fn prefers(self, candidate: f64, best: f64) -> bool {
        match self {
            Math::Max => candidate > best,
            Math::Min => candidate < best,
            _ => unreachable!("only max and min select an argument"),
        }
    }

    pub fn is_selection(self) -> bool {
        matches!(self, Math::Max | Math::Min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_has_exactly_one_row() {
        for f in FUNCTIONS {
            assert_eq!(FUNCTIONS.iter().filter(|g| g.name == f.name).count(), 1);
            assert_eq!(function(f.builtin).name, f.name);
            assert!(f.optional <= f.args.len());
            assert!(f.usage.starts_with(f.name));
        }
    }

    #[test]
    fn arity() {
        let max = lookup("max").unwrap();
        assert!(!max.takes(1) && max.takes(2) && max.takes(5));
        let d = lookup("demand").unwrap();
        assert!(!d.takes(1) && d.takes(2) && d.takes(3) && !d.takes(4));
        assert_eq!(max.arg_kind(4), ArgKind::Value);
    }

    #[test]
    fn domains() {
        assert!(Math::Ln.unary(0.0).is_err());
        assert!(Math::Sqrt.unary(-1e-300).is_err());
        assert_eq!(Math::Sqrt.unary(4.0).unwrap(), 2.0);
        assert_eq!(Math::Exp.unary(0.0).unwrap(), 1.0);
    }
}
