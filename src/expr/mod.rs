//! Expressions of the model format: parsing, name resolution, evaluation with gradients and
//! printing.
//!
//! A value in a model file may be a number or a string such as `"70 * endow"`. Strings are parsed
//! once into a [`Syntax`] tree (names still text, with byte spans for diagnostics), then resolved
//! into an [`Expr`] whose leaves are parameter indices, variable indices in the solver's layout, or
//! calls of the contract's functions (`demand`, `supply`, ...). Evaluation is forward-mode: it
//! returns the value and, where asked, the sparse gradient with respect to the solver's variables,
//! which is how tax rates, endowments and auxiliary constraints that depend on variables enter the
//! analytic Jacobian. Gradients are appended to one buffer and rescaled in place, so evaluation
//! allocates nothing once the buffer has grown.
//!
//! Every function a file may call is a row of the table in [`functions`].

use std::fmt;

pub mod functions;

pub use functions::{Builtin, Math};

/// The deepest an expression may nest (parentheses, signs, exponents and chained operators all
/// count): deeper text is a located load error, never a stack overflow.
pub const MAX_DEPTH: usize = 256;

/// A parsed expression before names are resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Syntax {
    Num(f64),
    Name {
        name: String,
        span: (usize, usize),
    },
    Neg(Box<Syntax>),
    Bin(BinOp, Box<Syntax>, Box<Syntax>),
    Call {
        name: String,
        args: Vec<Syntax>,
        span: (usize, usize),
    },
}

/// Binary operators, in the format's precedence order (`^` binds tightest, right-associative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

/// What is wrong with an expression's text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("'{0}' is not a number")]
    BadNumber(String),
    #[error("unexpected character '{0}'")]
    UnexpectedCharacter(char),
    #[error("unexpected end of expression")]
    UnexpectedEnd,
    #[error("expected ')'")]
    ExpectedClose,
    #[error("expected ',' or ')' in a function call")]
    ExpectedArgument,
    #[error("unexpected '{0}'")]
    Unexpected(char),
    #[error("empty expression")]
    Empty,
    #[error("'{0}' is not a complete index: write NAME[label, ...] with labels of letters, digits and '_'")]
    BadIndex(String),
    #[error("unexpected text after the expression")]
    Trailing,
    #[error("expression nested deeper than {MAX_DEPTH} levels (parentheses, signs, powers and chained operators count)")]
    TooDeep,
}

/// A parse error with the byte offset in the expression text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub offset: usize,
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.kind, self.offset + 1)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Ident(String),
    Op(char),
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize, usize)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || c == '.' {
            while i < bytes.len() && ((bytes[i] as char).is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && (bytes[j] as char).is_ascii_digit() {
                    i = j;
                    while i < bytes.len() && (bytes[i] as char).is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s = &text[start..i];
            let v: f64 = s.parse().map_err(|_| ParseError {
                offset: start,
                kind: ParseErrorKind::BadNumber(s.to_string()),
            })?;
            out.push((Token::Num(v), start, i));
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < bytes.len()
                && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'_')
            {
                i += 1;
            }
            let mut name = text[start..i].to_string();
            if i < bytes.len() && bytes[i] == b'[' {
                // An element of an indexed name, `x0[i, j]`: one name token, written
                // without spaces (`x0[i,j]`), labels of letters, digits and `_`.
                name.push('[');
                i += 1;
                let mut label = false;
                loop {
                    match bytes.get(i) {
                        Some(b) if b.is_ascii_whitespace() => i += 1,
                        Some(&b) if b.is_ascii_alphanumeric() || b == b'_' => {
                            name.push(b as char);
                            label = true;
                            i += 1;
                        }
                        Some(b',') if label => {
                            name.push(',');
                            label = false;
                            i += 1;
                        }
                        Some(b']') if label => {
                            name.push(']');
                            i += 1;
                            break;
                        }
                        _ => {
                            return Err(ParseError {
                                offset: i.min(text.len()),
                                kind: ParseErrorKind::BadIndex(
                                    text[start..i.min(text.len())].to_string(),
                                ),
                            })
                        }
                    }
                }
            }
            out.push((Token::Ident(name), start, i));
        } else {
            // The byte may start a multi-byte character: report the character itself.
            let c = text[start..].chars().next().unwrap_or(c);
            let tok = match c {
                '+' | '-' | '*' | '/' | '^' => Token::Op(c),
                '(' => Token::LParen,
                ')' => Token::RParen,
                ',' => Token::Comma,
                _ => {
                    return Err(ParseError {
                        offset: start,
                        kind: ParseErrorKind::UnexpectedCharacter(c),
                    })
                }
            };
            i += c.len_utf8();
            out.push((tok, start, i));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Token, usize, usize)>,
    pos: usize,
    end: usize,
    /// Nesting so far (recursion levels plus links of the operator chains being built): bounds
    /// the depth of the tree, hence of every recursive walk over it.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.end)
    }
    fn err<T>(&self, kind: ParseErrorKind) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.offset(),
            kind,
        })
    }
    /// One level deeper; an error past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(ParseErrorKind::TooDeep);
        }
        Ok(())
    }
    // sum := product (('+'|'-') product)*
    fn sum(&mut self) -> Result<Syntax, ParseError> {
        self.chain([('+', BinOp::Add), ('-', BinOp::Sub)], Self::product)
    }
    // product := unary (('*'|'/') unary)*
    fn product(&mut self) -> Result<Syntax, ParseError> {
        self.chain([('*', BinOp::Mul), ('/', BinOp::Div)], Self::unary)
    }
    /// A left-associative chain of `operand`s joined by `ops`; each link is one level deeper.
    fn chain(
        &mut self,
        ops: [(char, BinOp); 2],
        operand: fn(&mut Self) -> Result<Syntax, ParseError>,
    ) -> Result<Syntax, ParseError> {
        let depth = self.depth;
        let mut lhs = operand(self)?;
        while let Some(&(_, op)) = ops
            .iter()
            .find(|(c, _)| self.peek() == Some(&Token::Op(*c)))
        {
            self.deeper()?;
            self.pos += 1;
            let rhs = operand(self)?;
            lhs = Syntax::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        self.depth = depth;
        Ok(lhs)
    }
    // unary := ('-'|'+') unary | power ; so -2^2 = -(2^2)
    fn unary(&mut self) -> Result<Syntax, ParseError> {
        self.deeper()?;
        let e = match self.peek() {
            Some(Token::Op('-')) => {
                self.pos += 1;
                Syntax::Neg(Box::new(self.unary()?))
            }
            Some(Token::Op('+')) => {
                self.pos += 1;
                self.unary()?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        Ok(e)
    }
    // power := atom ('^' unary)?   (right-associative; the exponent may carry a sign)
    fn power(&mut self) -> Result<Syntax, ParseError> {
        let base = self.atom()?;
        if let Some(Token::Op('^')) = self.peek() {
            self.pos += 1;
            let exp = self.unary()?;
            return Ok(Syntax::Bin(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }
    fn atom(&mut self) -> Result<Syntax, ParseError> {
        let Some((tok, start, end)) = self.toks.get(self.pos).cloned() else {
            return self.err(ParseErrorKind::UnexpectedEnd);
        };
        self.pos += 1;
        match tok {
            Token::Num(v) => Ok(Syntax::Num(v)),
            Token::LParen => {
                let inner = self.sum()?;
                match self.peek() {
                    Some(Token::RParen) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => self.err(ParseErrorKind::ExpectedClose),
                }
            }
            Token::Ident(name) => {
                if let Some(Token::LParen) = self.peek() {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if let Some(Token::RParen) = self.peek() {
                        self.pos += 1;
                    } else {
                        loop {
                            args.push(self.sum()?);
                            match self.peek() {
                                Some(Token::Comma) => self.pos += 1,
                                Some(Token::RParen) => {
                                    self.pos += 1;
                                    break;
                                }
                                _ => return self.err(ParseErrorKind::ExpectedArgument),
                            }
                        }
                    }
                    let close = self.toks[self.pos - 1].2;
                    Ok(Syntax::Call {
                        name,
                        args,
                        span: (start, close),
                    })
                } else {
                    Ok(Syntax::Name {
                        name,
                        span: (start, end),
                    })
                }
            }
            Token::Op(c) => {
                self.pos -= 1;
                self.err(ParseErrorKind::Unexpected(c))
            }
            Token::RParen => {
                self.pos -= 1;
                self.err(ParseErrorKind::Unexpected(')'))
            }
            Token::Comma => {
                self.pos -= 1;
                self.err(ParseErrorKind::Unexpected(','))
            }
        }
    }
}

/// Parses an expression string of the model format.
pub fn parse(text: &str) -> Result<Syntax, ParseError> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err(ParseError {
            offset: 0,
            kind: ParseErrorKind::Empty,
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: text.len(),
        depth: 0,
    };
    let e = p.sum()?;
    if p.pos < p.toks.len() {
        return p.err(ParseErrorKind::Trailing);
    }
    Ok(e)
}

impl Syntax {
    /// Visits every name (not function names) with its span.
    pub fn names(&self, out: &mut Vec<(String, (usize, usize))>) {
        match self {
            Syntax::Num(_) => {}
            Syntax::Name { name, span } => out.push((name.clone(), *span)),
            Syntax::Neg(a) => a.names(out),
            Syntax::Bin(_, a, b) => {
                a.names(out);
                b.names(out);
            }
            Syntax::Call { args, .. } => args.iter().for_each(|a| a.names(out)),
        }
    }
}

pub use crate::ids::Var;

/// The contract's functions, with their arguments resolved to ids.
#[derive(Debug, Clone, PartialEq)]
pub enum Func {
    /// Physical input quantity per unit of activity of sector `sector`, summed over its leaves of
    /// `commodity` (only those under `nest` when given; `None` = all).
    Demand {
        sector: usize,
        commodity: usize,
        nest: Option<usize>,
    },
    /// Physical output quantity per unit of activity, as `Demand`.
    Supply {
        sector: usize,
        commodity: usize,
        nest: Option<usize>,
    },
    Final {
        consumer: usize,
        commodity: usize,
    },
    Endowment {
        consumer: usize,
        commodity: usize,
    },
    Revenue {
        consumer: usize,
    },
    Welfare {
        consumer: usize,
    },
    Ev {
        consumer: usize,
    },
}

impl Func {
    /// The row of the table of functions this call belongs to.
    pub fn builtin(&self) -> Builtin {
        match self {
            Func::Demand { .. } => Builtin::Demand,
            Func::Supply { .. } => Builtin::Supply,
            Func::Final { .. } => Builtin::Final,
            Func::Endowment { .. } => Builtin::Endowment,
            Func::Revenue { .. } => Builtin::Revenue,
            Func::Welfare { .. } => Builtin::Welfare,
            Func::Ev { .. } => Builtin::Ev,
        }
    }
}

/// A resolved expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Param(usize),
    /// A variable of the model (an activity level, price, income or auxiliary), by entity: the
    /// evaluation context maps it to the solver's layout.
    Var(Var),
    Func(Func),
    /// A named indicator (an extension): the index into the model's indicator list.
    Indicator(usize),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// A mathematical function of values (`ln`, `exp`, `sqrt`, `max`, `min`).
    Math(Math, Vec<Expr>),
    /// The time of a dynamic path (an extension): valid only in `[dynamics]` updates and paths.
    Time(Time),
}

/// The names of time along a dynamic path: `t`, the period (0, 1, …), and `year`, its label
/// (`start_year + step · t`). Both are reserved names; they stand only in dynamic expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    Period,
    Year,
}

impl Time {
    /// Both names, as written in expressions.
    pub const NAMES: [&'static str; 2] = ["t", "year"];

    /// The time a name stands for, if it is one of the reserved names.
    pub fn lookup(name: &str) -> Option<Time> {
        match name {
            "t" => Some(Time::Period),
            "year" => Some(Time::Year),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Time::Period => "t",
            Time::Year => "year",
        }
    }
}

/// A sparse gradient: (variable index, partial derivative), possibly with repeated indices.
pub type Grad = Vec<(usize, f64)>;

/// What an expression needs from its surroundings to evaluate.
pub trait EvalContext {
    fn param(&self, i: usize) -> f64;
    fn var(&self, v: Var) -> f64;
    /// The position of a variable in the gradient (the solver's layout).
    fn var_index(&self, v: Var) -> usize;
    /// Value of a function at the current point; its gradient is pushed into `grad` scaled by
    /// `scale` when `grad` is given.
    fn func(&self, f: &Func, scale: f64, grad: Option<&mut Grad>) -> Result<f64, EvalError>;
    /// Value of an indicator; gradients are not needed for indicators.
    fn indicator(&self, _i: usize) -> Result<f64, EvalError> {
        Err(EvalError::NoIndicators)
    }
    /// The period or year of a dynamic path; only contexts along a path know them.
    fn time(&self, _which: Time) -> Result<f64, EvalError> {
        Err(EvalError::NoTime)
    }
}

/// A failure while evaluating an expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("division by zero")]
    DivisionByZero,
    #[error("negative base {base} with non-integer exponent {exponent}")]
    NegativeBase { base: f64, exponent: f64 },
    #[error("{function}({argument}) is outside the function's domain")]
    Domain {
        function: &'static str,
        argument: f64,
    },
    #[error("functions are not allowed here")]
    NoFunctions,
    #[error("indicators are not available here")]
    NoIndicators,
    #[error("gradient of demand() requested without derivatives")]
    NoDerivatives,
    #[error("t and year are defined only along a dynamic path")]
    NoTime,
}

impl Expr {
    /// True when the expression has no variables, functions or indicators.
    pub fn is_parameter_only(&self) -> bool {
        match self {
            // Time is exogenous: known before a period is solved.
            Expr::Num(_) | Expr::Param(_) | Expr::Time(_) => true,
            Expr::Var(_) | Expr::Func(_) | Expr::Indicator(_) => false,
            Expr::Neg(a) => a.is_parameter_only(),
            Expr::Bin(_, a, b) => a.is_parameter_only() && b.is_parameter_only(),
            Expr::Math(_, args) => args.iter().all(Expr::is_parameter_only),
        }
    }

    /// True when the expression is a constant (no names at all).
    pub fn constant(&self) -> Option<f64> {
        match self {
            Expr::Num(v) => Some(*v),
            _ => None,
        }
    }

    /// Evaluates without a gradient.
    pub fn eval(&self, ctx: &dyn EvalContext) -> Result<f64, EvalError> {
        self.eval_grad(ctx, 1.0, None)
    }

    /// Evaluates; when `grad` is given, pushes `scale ·` the gradient of this expression.
    ///
    /// Operands that need both values first (products, quotients, powers, functions) append
    /// their gradients unscaled and rescale their own segment of `grad` in place afterwards,
    /// so no buffer is allocated here.
    pub fn eval_grad(
        &self,
        ctx: &dyn EvalContext,
        scale: f64,
        grad: Option<&mut Grad>,
    ) -> Result<f64, EvalError> {
        match self {
            Expr::Num(v) => Ok(*v),
            Expr::Param(i) => Ok(ctx.param(*i)),
            Expr::Var(v) => {
                if let Some(g) = grad {
                    g.push((ctx.var_index(*v), scale));
                }
                Ok(ctx.var(*v))
            }
            Expr::Func(f) => ctx.func(f, scale, grad),
            Expr::Indicator(i) => ctx.indicator(*i),
            Expr::Time(which) => ctx.time(*which),
            Expr::Neg(a) => Ok(-a.eval_grad(ctx, -scale, grad)?),
            Expr::Math(m, args) => eval_math(*m, args, ctx, scale, grad),
            Expr::Bin(op, a, b) => {
                let Some(g) = grad else {
                    let x = a.eval(ctx)?;
                    let y = b.eval(ctx)?;
                    return apply(*op, x, y);
                };
                match op {
                    BinOp::Add => {
                        let x = a.eval_grad(ctx, scale, Some(g))?;
                        let y = b.eval_grad(ctx, scale, Some(g))?;
                        Ok(x + y)
                    }
                    BinOp::Sub => {
                        let x = a.eval_grad(ctx, scale, Some(g))?;
                        let y = b.eval_grad(ctx, -scale, Some(g))?;
                        Ok(x - y)
                    }
                    _ => {
                        let start = g.len();
                        let x = a.eval_grad(ctx, 1.0, Some(g))?;
                        let mid = g.len();
                        let y = b.eval_grad(ctx, 1.0, Some(g))?;
                        let v = apply(*op, x, y)?;
                        let (da, db) = match op {
                            BinOp::Mul => (y, x),
                            BinOp::Div => (1.0 / y, -x / (y * y)),
                            BinOp::Pow => {
                                let da = if y == 0.0 { 0.0 } else { y * x.powf(y - 1.0) };
                                let db = if mid == g.len() {
                                    0.0
                                } else if x > 0.0 {
                                    v * x.ln()
                                } else {
                                    0.0
                                };
                                (da, db)
                            }
                            _ => unreachable!(),
                        };
                        rescale(&mut g[start..mid], da * scale);
                        rescale(&mut g[mid..], db * scale);
                        Ok(v)
                    }
                }
            }
        }
    }

    /// Replaces every parameter by its value, folding constant sub-expressions.
    pub fn substitute_params(&self, params: &[f64]) -> Expr {
        match self {
            Expr::Param(i) => Expr::Num(params[*i]),
            Expr::Neg(a) => match a.substitute_params(params) {
                Expr::Num(v) => Expr::Num(-v),
                e => Expr::Neg(Box::new(e)),
            },
            Expr::Bin(op, a, b) => {
                let a = a.substitute_params(params);
                let b = b.substitute_params(params);
                match (&a, &b) {
                    (Expr::Num(x), Expr::Num(y)) => match apply(*op, *x, *y) {
                        Ok(v) => Expr::Num(v),
                        Err(_) => Expr::Bin(*op, Box::new(a), Box::new(b)),
                    },
                    _ => Expr::Bin(*op, Box::new(a), Box::new(b)),
                }
            }
            Expr::Math(m, args) => {
                let args: Vec<Expr> = args.iter().map(|a| a.substitute_params(params)).collect();
                let folded = if args.iter().all(|a| a.constant().is_some()) {
                    eval_math(*m, &args, &NoContext, 1.0, None).ok()
                } else {
                    None
                };
                match folded {
                    Some(v) => Expr::Num(v),
                    None => Expr::Math(*m, args),
                }
            }
            e => e.clone(),
        }
    }

    /// Depth and node count of the tree, an indicator counting as the measure of its own
    /// expression (`indicator(i)`, memoised by the caller): what evaluating or inlining it
    /// costs, computed without expanding anything.
    pub fn measure(&self, indicator: &dyn Fn(usize) -> (usize, f64)) -> (usize, f64) {
        match self {
            Expr::Indicator(i) => indicator(*i),
            Expr::Neg(a) => {
                let (d, n) = a.measure(indicator);
                (d + 1, n + 1.0)
            }
            Expr::Bin(_, a, b) => {
                let (da, na) = a.measure(indicator);
                let (db, nb) = b.measure(indicator);
                (da.max(db) + 1, na + nb + 1.0)
            }
            Expr::Math(_, args) => args.iter().fold((1, 1.0), |(d, n), a| {
                let (da, na) = a.measure(indicator);
                (d.max(da + 1), n + na)
            }),
            _ => (1, 1.0),
        }
    }

    /// Visits every leaf of the tree (numbers, parameters, variables, function calls,
    /// indicators, time), left to right.
    pub fn visit_leaves(&self, visit: &mut dyn FnMut(&Expr)) {
        match self {
            Expr::Neg(a) => a.visit_leaves(visit),
            Expr::Bin(_, a, b) => {
                a.visit_leaves(visit);
                b.visit_leaves(visit);
            }
            Expr::Math(_, args) => args.iter().for_each(|a| a.visit_leaves(visit)),
            leaf => visit(leaf),
        }
    }

    /// Collects the parameters this expression reads directly (not through the definitions of
    /// derived parameters).
    pub fn params(&self, out: &mut Vec<usize>) {
        self.visit_leaves(&mut |e| {
            if let Expr::Param(i) = e {
                out.push(*i)
            }
        });
    }

    /// Whether the expression reads a parameter for which `pred` holds.
    pub fn reads_param(&self, pred: &dyn Fn(usize) -> bool) -> bool {
        match self {
            Expr::Param(i) => pred(*i),
            Expr::Neg(a) => a.reads_param(pred),
            Expr::Bin(_, a, b) => a.reads_param(pred) || b.reads_param(pred),
            Expr::Math(_, args) => args.iter().any(|a| a.reads_param(pred)),
            _ => false,
        }
    }

    /// Collects the variable indices this expression reads directly.
    pub fn vars(&self, out: &mut Vec<Var>) {
        self.visit_leaves(&mut |e| {
            if let Expr::Var(v) = e {
                out.push(*v)
            }
        });
    }
}

/// Multiplies a segment of gradient entries by `factor`.
fn rescale(segment: &mut [(usize, f64)], factor: f64) {
    for (_, d) in segment {
        *d *= factor;
    }
}

/// A context with nothing in it: for folding constants.
struct NoContext;

impl EvalContext for NoContext {
    fn param(&self, _i: usize) -> f64 {
        f64::NAN
    }
    fn var(&self, _v: Var) -> f64 {
        f64::NAN
    }
    fn var_index(&self, _v: Var) -> usize {
        0
    }
    fn func(&self, _f: &Func, _s: f64, _g: Option<&mut Grad>) -> Result<f64, EvalError> {
        Err(EvalError::NoFunctions)
    }
}

/// Evaluates a mathematical function of expressions, pushing `scale ·` its gradient.
///
/// `max` and `min` push the gradient entries of every argument, those of the arguments not
/// selected with a zero factor, so the Jacobian's pattern does not depend on which one is.
fn eval_math(
    m: Math,
    args: &[Expr],
    ctx: &dyn EvalContext,
    scale: f64,
    grad: Option<&mut Grad>,
) -> Result<f64, EvalError> {
    if !m.is_selection() {
        let Some(g) = grad else {
            return m.unary(args[0].eval(ctx)?);
        };
        let start = g.len();
        let x = args[0].eval_grad(ctx, 1.0, Some(g))?;
        let v = m.unary(x)?;
        let d = if start == g.len() {
            0.0
        } else {
            m.unary_derivative(x, v)
        };
        rescale(&mut g[start..], d * scale);
        return Ok(v);
    }
    let Some(g) = grad else {
        let mut best = args[0].eval(ctx)?;
        for a in &args[1..] {
            let v = a.eval(ctx)?;
            if m.prefers(v, best) {
                best = v;
            }
        }
        return Ok(best);
    };
    // One pass: keep the segment of the best argument so far, zero the others.
    let mut best = f64::NAN;
    let mut best_segment = (g.len(), g.len());
    for (k, a) in args.iter().enumerate() {
        let start = g.len();
        let v = a.eval_grad(ctx, scale, Some(g))?;
        if k == 0 || m.prefers(v, best) {
            rescale(&mut g[best_segment.0..best_segment.1], 0.0);
            best = v;
            best_segment = (start, g.len());
        } else {
            rescale(&mut g[start..], 0.0);
        }
    }
    Ok(best)
}

/// Applies a binary operator with the format's error rules.
pub fn apply(op: BinOp, x: f64, y: f64) -> Result<f64, EvalError> {
    match op {
        BinOp::Add => Ok(x + y),
        BinOp::Sub => Ok(x - y),
        BinOp::Mul => Ok(x * y),
        BinOp::Div => {
            if y == 0.0 {
                Err(EvalError::DivisionByZero)
            } else {
                Ok(x / y)
            }
        }
        BinOp::Pow => {
            if x < 0.0 && y.fract() != 0.0 {
                Err(EvalError::NegativeBase {
                    base: x,
                    exponent: y,
                })
            } else {
                Ok(x.powf(y))
            }
        }
    }
}

/// Prints a syntax tree back to text, with parentheses wherever precedence needs them. Used by
/// `flatten` after extensions (`sam()` cells) are replaced by numbers.
pub fn print(s: &Syntax) -> String {
    fn prec(s: &Syntax) -> u8 {
        match s {
            Syntax::Bin(BinOp::Add | BinOp::Sub, ..) => 1,
            Syntax::Bin(BinOp::Mul | BinOp::Div, ..) => 2,
            Syntax::Neg(_) => 3,
            Syntax::Bin(BinOp::Pow, ..) => 4,
            _ => 5,
        }
    }
    fn wrap(s: &Syntax, need: u8, strict: bool) -> String {
        let p = prec(s);
        let txt = print(s);
        if p < need || (strict && p == need) {
            format!("({txt})")
        } else {
            txt
        }
    }
    match s {
        Syntax::Num(v) => {
            if *v < 0.0 {
                format!("({})", fmt_num(*v))
            } else {
                fmt_num(*v)
            }
        }
        Syntax::Name { name, .. } => name.clone(),
        Syntax::Neg(a) => format!("-{}", wrap(a, 4, false)),
        Syntax::Bin(op, a, b) => match op {
            BinOp::Add => format!("{} + {}", wrap(a, 1, false), wrap(b, 1, true)),
            BinOp::Sub => format!("{} - {}", wrap(a, 1, false), wrap(b, 1, true)),
            BinOp::Mul => format!("{} * {}", wrap(a, 2, false), wrap(b, 2, true)),
            BinOp::Div => format!("{} / {}", wrap(a, 2, false), wrap(b, 2, true)),
            BinOp::Pow => format!("{}^{}", wrap(a, 5, false), wrap(b, 4, false)),
        },
        Syntax::Call { name, args, .. } => {
            let a: Vec<String> = args.iter().map(print).collect();
            format!("{name}({})", a.join(", "))
        }
    }
}

/// Formats a number so that it reads back to the same f64.
pub fn fmt_num(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ctx;
    impl EvalContext for Ctx {
        fn param(&self, i: usize) -> f64 {
            [2.0, 3.0][i]
        }
        fn var(&self, v: Var) -> f64 {
            [1.5, 4.0][self.var_index(v)]
        }
        fn var_index(&self, v: Var) -> usize {
            match v {
                Var::Sector(s) => s.index(),
                _ => unreachable!(),
            }
        }
        fn func(&self, _f: &Func, _s: f64, _g: Option<&mut Grad>) -> Result<f64, EvalError> {
            Err(EvalError::NoFunctions)
        }
    }

    fn x(i: usize) -> Expr {
        Expr::Var(Var::Sector(crate::ids::SectorId::new(i)))
    }

    fn expr(s: &str) -> Expr {
        fn conv(s: &Syntax) -> Expr {
            match s {
                Syntax::Num(v) => Expr::Num(*v),
                Syntax::Name { name, .. } => match name.as_str() {
                    "a" => Expr::Param(0),
                    "b" => Expr::Param(1),
                    "x" => x(0),
                    _ => x(1),
                },
                Syntax::Neg(a) => Expr::Neg(Box::new(conv(a))),
                Syntax::Bin(o, a, b) => Expr::Bin(*o, Box::new(conv(a)), Box::new(conv(b))),
                Syntax::Call { name, args, .. } => {
                    let Some(Builtin::Math(m)) = functions::lookup(name).map(|f| f.builtin) else {
                        unreachable!()
                    };
                    Expr::Math(m, args.iter().map(conv).collect())
                }
            }
        }
        conv(&parse(s).unwrap())
    }

    fn num(s: &str) -> f64 {
        expr(s).eval(&Ctx).unwrap()
    }

    /// Value and dense gradient (two variables) of `scale ·` the expression.
    fn value_and_gradient(s: &str, scale: f64) -> (f64, [f64; 2], usize) {
        let mut g = Grad::new();
        let v = expr(s).eval_grad(&Ctx, scale, Some(&mut g)).unwrap();
        let mut d = [0.0; 2];
        for &(i, x) in &g {
            d[i] += x;
        }
        (v, d, g.len())
    }

    #[test]
    fn math_functions_have_exact_values_and_gradients() {
        // x = 1.5, y = 4
        assert_eq!(num("ln(y)"), 4f64.ln());
        assert_eq!(num("exp(x)"), 1.5f64.exp());
        assert_eq!(num("sqrt(y)"), 2.0);
        assert_eq!(num("max(x, y, a)"), 4.0);
        assert_eq!(num("min(x, y, a)"), 1.5);
        assert_eq!(num("ln(exp(2))"), 2.0);
        let cases: [(&str, [f64; 2]); 6] = [
            ("ln(x * y)", [1.0 / 1.5, 0.25]),
            ("exp(x) * y", [1.5f64.exp() * 4.0, 1.5f64.exp()]),
            ("sqrt(y) + x", [1.0, 0.25]),
            ("max(x, y)", [0.0, 1.0]),
            ("min(x, y)", [1.0, 0.0]),
            ("x * max(y - 4, 0)", [0.0, 1.5]), // a tie: the first argument's gradient
        ];
        for (s, want) in cases {
            let (_, d, _) = value_and_gradient(s, 2.0);
            for k in 0..2 {
                assert!(
                    (d[k] - 2.0 * want[k]).abs() < 1e-12,
                    "{s}: d{k} = {} not {}",
                    d[k],
                    2.0 * want[k]
                );
            }
        }
        // The pattern of max/min holds every argument's entries whichever is selected.
        assert_eq!(value_and_gradient("max(x, y)", 1.0).2, 2);
        assert_eq!(value_and_gradient("min(2 * x, y)", 1.0).2, 2);
    }

    #[test]
    fn math_domain_errors() {
        assert!(matches!(
            expr("ln(x - 1.5)").eval(&Ctx),
            Err(EvalError::Domain { function: "ln", .. })
        ));
        assert!(matches!(
            expr("sqrt(-y)").eval(&Ctx),
            Err(EvalError::Domain {
                function: "sqrt",
                ..
            })
        ));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(&deep).unwrap_err().kind, ParseErrorKind::TooDeep);
        let chain = vec!["1"; MAX_DEPTH + 2].join(" + ");
        assert_eq!(parse(&chain).unwrap_err().kind, ParseErrorKind::TooDeep);
        let negs = format!("{}1", "-".repeat(5000));
        assert_eq!(parse(&negs).unwrap_err().kind, ParseErrorKind::TooDeep);
        let pows = vec!["1"; 5000].join("^");
        assert_eq!(parse(&pows).unwrap_err().kind, ParseErrorKind::TooDeep);
        let calls = format!("{}1{}", "ln(".repeat(5000), ")".repeat(5000));
        assert_eq!(parse(&calls).unwrap_err().kind, ParseErrorKind::TooDeep);
        // Within the limit it parses.
        let ok = vec!["1"; MAX_DEPTH / 2].join(" + ");
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn non_ascii_characters_are_reported_whole() {
        assert_eq!(
            parse("1 × 2").unwrap_err().kind,
            ParseErrorKind::UnexpectedCharacter('×')
        );
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(num("-2^2"), -4.0);
        assert_eq!(num("2^3^2"), 512.0);
        assert_eq!(num("2^-1"), 0.5);
        assert_eq!(num("1 - 2 - 3"), -4.0);
        assert_eq!(num("8 / 2 / 2"), 2.0);
        assert_eq!(num("70 * a + .5e1"), 145.0);
        assert_eq!(num("(a + b) * 2"), 10.0);
        assert_eq!(num("1e-3"), 0.001);
    }

    #[test]
    fn errors_carry_offsets() {
        assert_eq!(parse("1 +").unwrap_err().offset, 3);
        assert_eq!(parse("1 $ 2").unwrap_err().offset, 2);
        assert!(parse("(1").is_err());
        assert!(parse("").is_err());
        assert!(parse("f(1,").is_err());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let e = Expr::Bin(
            BinOp::Div,
            Box::new(Expr::Bin(BinOp::Pow, Box::new(x(0)), Box::new(x(1)))),
            Box::new(Expr::Bin(
                BinOp::Sub,
                Box::new(x(1)),
                Box::new(Expr::Num(0.5)),
            )),
        );
        let mut g = Grad::new();
        let v = e.eval_grad(&Ctx, 2.0, Some(&mut g)).unwrap();
        let expect = 1.5f64.powf(4.0) / 3.5;
        assert!((v - expect).abs() < 1e-12);
        let mut d = [0.0; 2];
        for (i, x) in g {
            d[i] += x;
        }
        let d0 = 2.0 * 4.0 * 1.5f64.powf(3.0) / 3.5;
        let d1 = 2.0 * (1.5f64.powf(4.0) * 1.5f64.ln() / 3.5 - 1.5f64.powf(4.0) / 3.5 / 3.5);
        assert!((d[0] - d0).abs() < 1e-12, "{} {}", d[0], d0);
        assert!((d[1] - d1).abs() < 1e-12, "{} {}", d[1], d1);
    }

    fn strip(s: &Syntax) -> Syntax {
        match s {
            Syntax::Name { name, .. } => Syntax::Name {
                name: name.clone(),
                span: (0, 0),
            },
            Syntax::Neg(a) => Syntax::Neg(Box::new(strip(a))),
            Syntax::Bin(o, a, b) => Syntax::Bin(*o, Box::new(strip(a)), Box::new(strip(b))),
            Syntax::Call { name, args, .. } => Syntax::Call {
                name: name.clone(),
                args: args.iter().map(strip).collect(),
                span: (0, 0),
            },
            n => n.clone(),
        }
    }

    #[test]
    fn print_round_trips() {
        for s in [
            "-2^2",
            "(1 - 2) - 3",
            "1 - (2 - 3)",
            "a / (b * 2)",
            "2^(3^2)",
            "(2^3)^2",
            "-(a + b)",
            "f(a, 1 + 2)",
        ] {
            let p = parse(s).unwrap();
            let q = parse(&print(&p)).unwrap();
            assert_eq!(print(&p), print(&q), "{s}");
            assert_eq!(strip(&p), strip(&q), "{s} -> {}", print(&p));
        }
    }

    #[test]
    fn division_by_zero_and_negative_base_are_errors() {
        assert!(apply(BinOp::Div, 1.0, 0.0).is_err());
        assert!(apply(BinOp::Pow, -2.0, 0.5).is_err());
        assert_eq!(apply(BinOp::Pow, -2.0, 2.0).unwrap(), 4.0);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn syntax() -> impl Strategy<Value = Syntax> {
        let leaf = prop_oneof![
            (0u32..1000).prop_map(|v| Syntax::Num(v as f64 / 8.0)),
            "[a-d]".prop_map(|n| Syntax::Name {
                name: n,
                span: (0, 0)
            }),
        ];
        leaf.prop_recursive(4, 32, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|a| Syntax::Neg(Box::new(a))),
                (inner.clone(), inner.clone(), 0..5u8).prop_map(|(a, b, o)| {
                    let op =
                        [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Pow][o as usize];
                    Syntax::Bin(op, Box::new(a), Box::new(b))
                }),
            ]
        })
    }

    fn value(s: &Syntax) -> Option<f64> {
        match s {
            Syntax::Num(v) => Some(*v),
            Syntax::Name { name, .. } => Some(1.0 + (name.as_bytes()[0] - b'a') as f64 * 0.25),
            Syntax::Neg(a) => Some(-value(a)?),
            Syntax::Bin(op, a, b) => apply(*op, value(a)?, value(b)?).ok(),
            Syntax::Call { .. } => None,
        }
    }

    proptest! {
        /// Printing then parsing gives back an expression with the same value: the printer
        /// puts parentheses wherever precedence and associativity need them.
        #[test]
        fn print_then_parse_preserves_the_value(s in syntax()) {
            let text = print(&s);
            let back = parse(&text).unwrap();
            match (value(&s), value(&back)) {
                (Some(a), Some(b)) if a.is_finite() => prop_assert!(a == b || (a - b).abs() <= 1e-12 * a.abs(), "{text}: {a} vs {b}"),
                _ => {}
            }
            prop_assert_eq!(print(&back), text);
        }
    }
}
