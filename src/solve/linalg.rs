//! Linear algebra of the Newton step behind one small trait: analyse a Jacobian's pattern
//! once, factor the Newton matrix `H = diag(d) + diag(s)·J` for new values, solve in place.
//!
//! `J` comes as sparse entries plus rank-one terms ([`Jacobian`]). Backends:
//! - [`FaerDenseLu`]: faer's blocked dense LU with partial pivoting (the rank-one terms formed
//!   into the matrix); two threads from 300 unknowns up (a fixed split, so the numbers do not
//!   depend on the machine's thread count).
//! - [`FaerSparseLu`]: faer's sparse LU of the sparse part (symbolic analysis and numeric
//!   storage kept between factorisations) with the rank-one terms applied by the
//!   Sherman–Morrison–Woodbury formula; when the sparse part alone is singular it factors the
//!   whole matrix densely instead.
//! - [`Gmres`]: restarted GMRES on products with `H` (never formed), right-preconditioned by
//!   a factorisation of an earlier Newton matrix that is kept while GMRES converges quickly
//!   with it and renewed when it does not: Newton–Krylov with a lagged preconditioner, which
//!   makes later Newton steps cost products instead of factorisations.
//!
//! `Backend::Auto` picks by size and density ([`choose`]); `docs/performance.md` has the
//! measurements behind the thresholds. A new backend is one type implementing
//! [`LinearSolver`] plus one [`Backend`] and [`Choice`] variant.

use std::num::NonZeroUsize;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::{factor as dense_factor, solve as dense_solve};
use faer::perm::PermRef;
use faer::sparse::linalg::lu::{factorize_symbolic_lu, NumericLu, SymbolicLu};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use faer::{Mat, MatMut, Par};

use super::jacobian::{Jacobian, DROPPED};

/// Why a linear solve failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinearSolveError {
    #[error("the matrix is singular")]
    Singular,
    #[error("the solution is not finite")]
    NotFinite,
}

/// Which linear solver the Newton step uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Chosen by size and density ([`choose`]).
    Auto,
    /// faer's dense LU.
    Dense,
    /// faer's sparse LU with Sherman–Morrison–Woodbury for rank-one terms.
    Sparse,
    /// GMRES preconditioned by a lagged factorisation.
    Krylov,
}

impl Backend {
    /// The names accepted on the command line.
    pub const NAMES: [&'static str; 4] = ["auto", "dense", "sparse", "krylov"];

    /// The backend of a name in [`Backend::NAMES`].
    pub fn from_name(name: &str) -> Option<Backend> {
        match name {
            "auto" => Some(Backend::Auto),
            "dense" => Some(Backend::Dense),
            "sparse" => Some(Backend::Sparse),
            "krylov" => Some(Backend::Krylov),
            _ => None,
        }
    }
}

/// Unknowns up to which `Backend::Auto` factors densely whatever the pattern.
pub const DENSE_LIMIT: usize = 150;
/// `Backend::Auto` factors densely when the matrix, with its rank-one terms formed, would have
/// at least this fraction of n² entries...
pub const DENSE_FILL: f64 = 0.1;
/// ...and at most this many unknowns; beyond, a direct factorisation per Newton step costs
/// more than GMRES preconditioned by one.
pub const KRYLOV_FROM: usize = 600;
/// Unknowns from which the dense LU runs on two threads.
pub const PARALLEL_FROM: usize = 300;

/// A resolved backend choice (what `Auto` became for a given size and pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    FaerDense,
    FaerSparse,
    /// GMRES preconditioned by a lagged dense or sparse factorisation.
    Krylov(Direct),
}

/// The direct factorisation behind a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    Dense,
    Sparse,
}

/// Resolves a backend for a Jacobian (its size, sparse entries and rank-one terms).
pub fn choose(backend: Backend, jac: &Jacobian) -> Choice {
    let n = jac.dim();
    let dense = n <= DENSE_LIMIT || jac.fill_estimate() as f64 >= DENSE_FILL * (n * n) as f64;
    let direct = if dense { Direct::Dense } else { Direct::Sparse };
    match backend {
        Backend::Dense => Choice::FaerDense,
        Backend::Sparse => Choice::FaerSparse,
        Backend::Krylov => Choice::Krylov(direct),
        Backend::Auto => match direct {
            _ if n >= KRYLOV_FROM => Choice::Krylov(direct),
            Direct::Dense => Choice::FaerDense,
            Direct::Sparse => Choice::FaerSparse,
        },
    }
}

/// A fresh solver of a choice.
pub fn new_solver(choice: Choice) -> Box<dyn LinearSolver> {
    match choice {
        Choice::FaerDense => Box::<FaerDenseLu>::default(),
        Choice::FaerSparse => Box::<FaerSparseLu>::default(),
        Choice::Krylov(direct) => Box::new(Gmres::new(direct)),
    }
}

/// The Newton matrix `H = diag(diag) + diag(row_scale)·J`.
#[derive(Clone, Copy)]
pub struct NewtonMatrix<'a> {
    pub jac: &'a Jacobian,
    pub row_scale: &'a [f64],
    pub diag: &'a [f64],
}

impl NewtonMatrix<'_> {
    pub fn dim(&self) -> usize {
        self.jac.dim()
    }
    /// `y = H x`.
    pub fn mul(&self, x: &[f64], y: &mut [f64]) {
        for i in 0..y.len() {
            y[i] = self.diag[i] * x[i];
        }
        self.jac.mul_add(self.row_scale, x, y);
    }
}

/// Work done by a linear solver, for the solve's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinearWork {
    pub factorisations: u64,
    /// Products with the Newton matrix (GMRES iterations).
    pub products: u64,
}

/// A square linear solver for Newton matrices of one Jacobian pattern.
pub trait LinearSolver: Send {
    /// Prepares for the pattern of `jac` (its entries and rank-one terms); storage is sized
    /// here.
    fn analyse(&mut self, jac: &Jacobian) -> Result<(), LinearSolveError>;
    /// Takes the values of a new Newton matrix (factoring it, or deciding not to).
    fn factor(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError>;
    /// Overwrites `b` with the solution of `H x = b` for the matrix last given to `factor`; an
    /// iterative solver stops at a residual of `rtol·‖b‖`.
    fn solve_in_place(
        &mut self,
        h: &NewtonMatrix<'_>,
        b: &mut [f64],
        rtol: f64,
    ) -> Result<(), LinearSolveError>;
    /// Work done since the analysis.
    fn work(&self) -> LinearWork;
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// faer's dense LU with partial pivoting, factored in place.
pub struct FaerDenseLu {
    n: usize,
    lu: Mat<f64>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    scratch: Option<MemBuffer>,
    par: Par,
    work: LinearWork,
}

impl Default for FaerDenseLu {
    fn default() -> Self {
        FaerDenseLu {
            n: 0,
            lu: Mat::zeros(0, 0),
            perm: Vec::new(),
            perm_inv: Vec::new(),
            scratch: None,
            par: Par::Seq,
            work: LinearWork::default(),
        }
    }
}

impl FaerDenseLu {
    /// Sizes storage for n × n matrices.
    fn size(&mut self, n: usize) {
        self.n = n;
        self.lu = Mat::zeros(n, n);
        self.perm = vec![0; n];
        self.perm_inv = vec![0; n];
        self.par = if n >= PARALLEL_FROM {
            Par::Rayon(NonZeroUsize::new(2).expect("2 > 0"))
        } else {
            Par::Seq
        };
        let req =
            dense_factor::lu_in_place_scratch::<usize, f64>(n, n, self.par, Default::default())
                .or(dense_solve::solve_in_place_scratch::<usize, f64>(
                    n, 1, self.par,
                ));
        self.scratch = Some(MemBuffer::new(req));
    }

    /// Forms `H` densely: sparse entries, diagonal and every rank-one term.
    fn assemble(&mut self, h: &NewtonMatrix<'_>) {
        let a = &mut self.lu;
        a.fill(0.0);
        let (rows, cols, values) = h.jac.entries();
        for k in 0..rows.len() {
            let (r, c) = (rows[k], cols[k]);
            if r != DROPPED && c != DROPPED {
                let (r, c) = (r as usize, c as usize);
                a[(r, c)] += h.row_scale[r] * values[k];
            }
        }
        for i in 0..self.n {
            a[(i, i)] += h.diag[i];
        }
        for t in 0..h.jac.rank() {
            let ((ru, u), (cv, v)) = h.jac.term(t);
            for (&c, &v) in cv.iter().zip(v) {
                if c == DROPPED || v == 0.0 {
                    continue;
                }
                let mut col = a.col_mut(c as usize);
                for (&r, &u) in ru.iter().zip(u) {
                    if r != DROPPED {
                        col[r as usize] += h.row_scale[r as usize] * u * v;
                    }
                }
            }
        }
    }

    fn factor_assembled(&mut self) -> Result<(), LinearSolveError> {
        let stack = MemStack::new(self.scratch.as_mut().expect("sized"));
        dense_factor::lu_in_place(
            self.lu.as_mut(),
            &mut self.perm,
            &mut self.perm_inv,
            self.par,
            stack,
            Default::default(),
        );
        self.work.factorisations += 1;
        // A zero pivot makes the triangular solve divide by zero: report it here.
        let ok = (0..self.n).all(|i| {
            let d = self.lu[(i, i)];
            d != 0.0 && d.is_finite()
        });
        if ok {
            Ok(())
        } else {
            Err(LinearSolveError::Singular)
        }
    }

    fn solve(&mut self, b: &mut [f64]) {
        let n = self.n;
        let perm = PermRef::new_checked(&self.perm, &self.perm_inv, n);
        let rhs = MatMut::from_column_major_slice_mut(b, n, 1);
        let stack = MemStack::new(self.scratch.as_mut().expect("sized"));
        let lu = self.lu.as_ref();
        dense_solve::solve_in_place(lu, lu, perm, rhs, self.par, stack);
    }
}

impl LinearSolver for FaerDenseLu {
    fn analyse(&mut self, jac: &Jacobian) -> Result<(), LinearSolveError> {
        self.size(jac.dim());
        self.work = LinearWork::default();
        Ok(())
    }

    fn factor(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError> {
        self.assemble(h);
        self.factor_assembled()
    }

    fn solve_in_place(
        &mut self,
        _h: &NewtonMatrix<'_>,
        b: &mut [f64],
        _rtol: f64,
    ) -> Result<(), LinearSolveError> {
        self.solve(b);
        if all_finite(b) {
            Ok(())
        } else {
            Err(LinearSolveError::NotFinite)
        }
    }

    fn work(&self) -> LinearWork {
        self.work
    }
}

/// faer's sparse LU of the sparse part, rank-one terms by Sherman–Morrison–Woodbury: with
/// `H = A + Û Vᵀ` (`Û = diag(s)·U`), `H⁻¹b = y − W C⁻¹ Vᵀ y` where `y = A⁻¹b`, `W = A⁻¹Û` and
/// `C = I + Vᵀ W` (k × k for k terms). The compressed-column pattern, the map from entries to
/// its slots, the symbolic factorisation and the numeric storage are built once.
#[derive(Default)]
pub struct FaerSparseLu {
    n: usize,
    col_ptr: Vec<u32>,
    row_idx: Vec<u32>,
    /// Slot in `values` of each sparse entry ([`DROPPED`] for dropped ones) and of each
    /// diagonal element.
    slot: Vec<u32>,
    diag_slot: Vec<u32>,
    values: Vec<f64>,
    symbolic: Option<SymbolicLu<u32>>,
    numeric: NumericLu<u32, f64>,
    scratch: Option<MemBuffer>,
    /// W (n × k, column-major), C's LU and its permutation, scratch of length k.
    w: Vec<f64>,
    capacitance: FaerDenseLu,
    small: Vec<f64>,
    /// Set when the sparse part is singular: the whole matrix factored densely.
    dense: Option<FaerDenseLu>,
    factored: bool,
    work: LinearWork,
}

impl FaerSparseLu {
    fn pattern(&self) -> SymbolicSparseColMatRef<'_, u32> {
        SymbolicSparseColMatRef::new_checked(self.n, self.n, &self.col_ptr, None, &self.row_idx)
    }

    fn solve_sparse(&mut self, b: &mut [f64]) {
        let symbolic = self.symbolic.as_ref().expect("analysed");
        // Within faer's contract: `numeric` came from this symbolic analysis.
        let lu = faer::sparse::linalg::lu::LuRef::new_unchecked(symbolic, &self.numeric);
        let rhs = MatMut::from_column_major_slice_mut(b, self.n, 1);
        let stack = MemStack::new(self.scratch.as_mut().expect("analysed"));
        lu.solve_in_place_with_conj(faer::Conj::No, rhs, Par::Seq, stack);
    }

    /// W = A⁻¹Û and the LU of C = I + VᵀW.
    fn woodbury(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError> {
        let (n, k) = (self.n, h.jac.rank());
        let mut w = std::mem::take(&mut self.w);
        w.iter_mut().for_each(|v| *v = 0.0);
        for t in 0..k {
            let ((ru, u), _) = h.jac.term(t);
            let col = &mut w[t * n..(t + 1) * n];
            for (&r, &u) in ru.iter().zip(u) {
                if r != DROPPED {
                    col[r as usize] += h.row_scale[r as usize] * u;
                }
            }
            self.solve_sparse(col);
        }
        let c = &mut self.capacitance.lu;
        for i in 0..k {
            let (_, (cv, v)) = h.jac.term(i);
            for j in 0..k {
                let col = &w[j * n..(j + 1) * n];
                let dot: f64 = cv
                    .iter()
                    .zip(v)
                    .filter(|(c, _)| **c != DROPPED)
                    .map(|(&c, &v)| v * col[c as usize])
                    .sum();
                c[(i, j)] = dot + if i == j { 1.0 } else { 0.0 };
            }
        }
        self.w = w;
        if all_finite(&self.w) {
            self.capacitance.factor_assembled()
        } else {
            Err(LinearSolveError::Singular)
        }
    }

    fn factor_sparse(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError> {
        self.values.iter_mut().for_each(|v| *v = 0.0);
        let (rows, _, values) = h.jac.entries();
        for k in 0..rows.len() {
            let s = self.slot[k];
            if s != DROPPED {
                self.values[s as usize] += h.row_scale[rows[k] as usize] * values[k];
            }
        }
        for (i, &s) in self.diag_slot.iter().enumerate() {
            self.values[s as usize] += h.diag[i];
        }
        let symbolic = self.symbolic.as_ref().expect("analysed");
        let pattern =
            SymbolicSparseColMatRef::new_checked(self.n, self.n, &self.col_ptr, None, &self.row_idx);
        let a = SparseColMatRef::new(pattern, &self.values);
        let stack = MemStack::new(self.scratch.as_mut().expect("analysed"));
        symbolic
            .factorize_numeric_lu(&mut self.numeric, a, Par::Seq, stack, Default::default())
            .map_err(|_| LinearSolveError::Singular)?;
        self.work.factorisations += 1;
        if h.jac.rank() > 0 {
            self.woodbury(h)?;
        }
        Ok(())
    }
}

impl LinearSolver for FaerSparseLu {
    fn analyse(&mut self, jac: &Jacobian) -> Result<(), LinearSolveError> {
        let n = jac.dim();
        self.n = n;
        self.work = LinearWork::default();
        self.dense = None;
        self.factored = false;
        // Compressed columns by a counting sort: the entries and the diagonal, each distinct
        // position one slot.
        let (rows, cols, _) = jac.entries();
        let mut count = vec![0u32; n + 1];
        for k in 0..rows.len() {
            if rows[k] != DROPPED && cols[k] != DROPPED {
                count[cols[k] as usize + 1] += 1;
            }
        }
        for i in 0..n {
            count[i + 1] += 1;
        }
        for j in 0..n {
            count[j + 1] += count[j];
        }
        // (row, source) per column: source < len for entries, len + i for diagonal i.
        let len = rows.len();
        let mut by_col = vec![(0u32, 0u32); count[n] as usize];
        let mut next = count.clone();
        let mut place = |c: usize, r: u32, src: u32| {
            by_col[next[c] as usize] = (r, src);
            next[c] += 1;
        };
        for k in 0..len {
            if rows[k] != DROPPED && cols[k] != DROPPED {
                place(cols[k] as usize, rows[k], k as u32);
            }
        }
        for i in 0..n {
            place(i, i as u32, (len + i) as u32);
        }
        self.slot = vec![DROPPED; len];
        self.diag_slot = vec![0; n];
        self.col_ptr = vec![0; n + 1];
        self.row_idx.clear();
        for j in 0..n {
            let column = &mut by_col[count[j] as usize..count[j + 1] as usize];
            column.sort_unstable();
            let mut last = None;
            for &(r, src) in column.iter() {
                if last != Some(r) {
                    self.row_idx.push(r);
                    last = Some(r);
                }
                let s = (self.row_idx.len() - 1) as u32;
                if (src as usize) < len {
                    self.slot[src as usize] = s;
                } else {
                    self.diag_slot[src as usize - len] = s;
                }
            }
            self.col_ptr[j + 1] = self.row_idx.len() as u32;
        }
        self.values = vec![0.0; self.row_idx.len()];
        let symbolic = factorize_symbolic_lu(self.pattern(), Default::default())
            .map_err(|_| LinearSolveError::Singular)?;
        let req = symbolic
            .factorize_numeric_lu_scratch::<f64>(Par::Seq, Default::default())
            .or(symbolic.solve_in_place_scratch::<f64>(1, Par::Seq));
        self.scratch = Some(MemBuffer::new(req));
        self.symbolic = Some(symbolic);
        let k = jac.rank();
        self.w = vec![0.0; n * k];
        self.capacitance = FaerDenseLu::default();
        self.capacitance.size(k);
        self.small = vec![0.0; k];
        Ok(())
    }

    fn factor(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError> {
        self.factored = false;
        if self.dense.is_none() {
            match self.factor_sparse(h) {
                Ok(()) => {
                    self.factored = true;
                    return Ok(());
                }
                // The sparse part alone may be singular where the whole matrix is not (a
                // market cleared by final demand alone): factor the whole densely from now on.
                Err(_) => {
                    let mut d = FaerDenseLu::default();
                    d.size(self.n);
                    self.dense = Some(d);
                }
            }
        }
        let d = self.dense.as_mut().expect("set above");
        d.factor(h)?;
        self.work.factorisations += 1;
        self.factored = true;
        Ok(())
    }

    fn solve_in_place(
        &mut self,
        h: &NewtonMatrix<'_>,
        b: &mut [f64],
        rtol: f64,
    ) -> Result<(), LinearSolveError> {
        if !self.factored {
            return Err(LinearSolveError::Singular);
        }
        if let Some(d) = self.dense.as_mut() {
            return d.solve_in_place(h, b, rtol);
        }
        self.solve_sparse(b);
        let (n, k) = (self.n, h.jac.rank());
        if k > 0 {
            for t in 0..k {
                let (_, (cv, v)) = h.jac.term(t);
                self.small[t] = cv
                    .iter()
                    .zip(v)
                    .filter(|(c, _)| **c != DROPPED)
                    .map(|(&c, &v)| v * b[c as usize])
                    .sum();
            }
            let mut small = std::mem::take(&mut self.small);
            self.capacitance.solve(&mut small);
            for (t, &z) in small.iter().enumerate() {
                let col = &self.w[t * n..(t + 1) * n];
                for (bi, wi) in b.iter_mut().zip(col) {
                    *bi -= wi * z;
                }
            }
            self.small = small;
        }
        if all_finite(b) {
            Ok(())
        } else {
            Err(LinearSolveError::NotFinite)
        }
    }

    fn work(&self) -> LinearWork {
        self.work
    }
}

/// Restarted GMRES (modified Gram–Schmidt, Givens rotations), right-preconditioned by a
/// factorisation of an earlier Newton matrix. The factorisation is renewed when GMRES needed
/// more than [`Gmres::RENEW_AFTER`] products with it, or failed to converge (then the step is
/// solved with the fresh factorisation directly).
pub struct Gmres {
    direct: Direct,
    preconditioner: Option<Box<dyn LinearSolver>>,
    /// A preconditioner is factored and usable.
    ready: bool,
    /// The next `factor` renews the preconditioner.
    renew: bool,
    /// The preconditioner was factored on the matrix being solved.
    fresh: bool,
    n: usize,
    /// Krylov basis (restart + 1 vectors of length n, contiguous), Hessenberg matrix (column
    /// j holds restart + 1 rows), rotations, the projected right-hand side and scratch.
    basis: Vec<f64>,
    hess: Vec<f64>,
    cs: Vec<f64>,
    sn: Vec<f64>,
    g: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
    w: Vec<f64>,
    x: Vec<f64>,
    /// The right-hand side, kept for a direct solve when GMRES fails.
    rhs: Vec<f64>,
    work: LinearWork,
}

impl Gmres {
    /// Krylov vectors kept before a restart.
    pub const RESTART: usize = 40;
    /// Restarts before GMRES gives up on a preconditioner.
    pub const MAX_RESTARTS: usize = 3;
    /// Products per solve beyond which the preconditioner is renewed for the next step.
    pub const RENEW_AFTER: u64 = 12;

    pub fn new(direct: Direct) -> Gmres {
        Gmres {
            direct,
            preconditioner: None,
            ready: false,
            renew: true,
            fresh: false,
            n: 0,
            basis: Vec::new(),
            hess: Vec::new(),
            cs: Vec::new(),
            sn: Vec::new(),
            g: Vec::new(),
            y: Vec::new(),
            z: Vec::new(),
            w: Vec::new(),
            x: Vec::new(),
            rhs: Vec::new(),
            work: LinearWork::default(),
        }
    }

    fn preconditioner(&mut self) -> &mut Box<dyn LinearSolver> {
        self.preconditioner.as_mut().expect("analysed")
    }

    /// Factors the preconditioner on `h`.
    fn renew_on(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError> {
        self.ready = false;
        self.preconditioner().factor(h)?;
        self.work.factorisations += 1;
        self.ready = true;
        self.renew = false;
        Ok(())
    }

    /// Solves `H x = b` into `b` with the current preconditioner; `Ok(products)` when the
    /// residual fell to `rtol·‖b‖`, `Err(products)` otherwise (b then holds the best iterate).
    fn iterate(
        &mut self,
        h: &NewtonMatrix<'_>,
        b: &mut [f64],
        rtol: f64,
    ) -> Result<u64, u64> {
        let n = self.n;
        let m = Self::RESTART;
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let bnorm = norm(b);
        self.x.iter_mut().for_each(|v| *v = 0.0);
        if bnorm == 0.0 {
            return Ok(0);
        }
        let target = rtol * bnorm;
        let mut products = 0u64;
        // r = b − H x with x = 0.
        self.w.copy_from_slice(b);
        let mut beta = bnorm;
        for _restart in 0..=Self::MAX_RESTARTS {
            let v0 = &mut self.basis[..n];
            for (vi, wi) in v0.iter_mut().zip(&self.w) {
                *vi = wi / beta;
            }
            self.g.iter_mut().for_each(|v| *v = 0.0);
            self.g[0] = beta;
            let mut k = 0;
            let mut resid = beta;
            while k < m {
                // w = H M⁻¹ v_k
                self.z.copy_from_slice(&self.basis[k * n..(k + 1) * n]);
                let mut pre = self.preconditioner.take().expect("analysed");
                let solved = pre.solve_in_place(h, &mut self.z, 0.0);
                self.preconditioner = Some(pre);
                if solved.is_err() {
                    return Err(products);
                }
                h.mul(&self.z, &mut self.w);
                products += 1;
                // Modified Gram–Schmidt.
                let col = &mut self.hess[k * (m + 1)..(k + 1) * (m + 1)];
                for (i, hi) in col.iter_mut().enumerate().take(k + 1) {
                    let vi = &self.basis[i * n..(i + 1) * n];
                    let hik: f64 = vi.iter().zip(&self.w).map(|(a, b)| a * b).sum();
                    *hi = hik;
                    for (wj, vj) in self.w.iter_mut().zip(vi) {
                        *wj -= hik * vj;
                    }
                }
                let hn = norm(&self.w);
                col[k + 1] = hn;
                if hn > 0.0 {
                    let next = &mut self.basis[(k + 1) * n..(k + 2) * n];
                    for (vj, wj) in next.iter_mut().zip(&self.w) {
                        *vj = wj / hn;
                    }
                }
                // Previous rotations, then a new one zeroing col[k + 1].
                for i in 0..k {
                    let (a, b) = (col[i], col[i + 1]);
                    col[i] = self.cs[i] * a + self.sn[i] * b;
                    col[i + 1] = -self.sn[i] * a + self.cs[i] * b;
                }
                let r = col[k].hypot(col[k + 1]);
                let (c, s) = if r == 0.0 {
                    (1.0, 0.0)
                } else {
                    (col[k] / r, col[k + 1] / r)
                };
                self.cs[k] = c;
                self.sn[k] = s;
                col[k] = r;
                col[k + 1] = 0.0;
                self.g[k + 1] = -s * self.g[k];
                self.g[k] *= c;
                resid = self.g[k + 1].abs();
                k += 1;
                if resid <= target || hn == 0.0 || !resid.is_finite() {
                    break;
                }
            }
            // y = R⁻¹ g, x += M⁻¹ V y.
            for i in (0..k).rev() {
                let mut s = self.g[i];
                for j in i + 1..k {
                    s -= self.hess[j * (m + 1) + i] * self.y[j];
                }
                let d = self.hess[i * (m + 1) + i];
                self.y[i] = if d != 0.0 { s / d } else { 0.0 };
            }
            self.z.iter_mut().for_each(|v| *v = 0.0);
            for j in 0..k {
                let vj = &self.basis[j * n..(j + 1) * n];
                let yj = self.y[j];
                for (zi, vi) in self.z.iter_mut().zip(vj) {
                    *zi += yj * vi;
                }
            }
            let mut pre = self.preconditioner.take().expect("analysed");
            let solved = pre.solve_in_place(h, &mut self.z, 0.0);
            self.preconditioner = Some(pre);
            if solved.is_err() {
                return Err(products);
            }
            for (xi, zi) in self.x.iter_mut().zip(&self.z) {
                *xi += zi;
            }
            if !resid.is_finite() {
                return Err(products);
            }
            // The true residual decides (the recurrence drifts in finite precision).
            h.mul(&self.x, &mut self.w);
            products += 1;
            for (wi, bi) in self.w.iter_mut().zip(b.iter()) {
                *wi = bi - *wi;
            }
            beta = norm(&self.w);
            if beta <= target {
                b.copy_from_slice(&self.x);
                return Ok(products);
            }
        }
        b.copy_from_slice(&self.x);
        Err(products)
    }
}

impl LinearSolver for Gmres {
    fn analyse(&mut self, jac: &Jacobian) -> Result<(), LinearSolveError> {
        let n = jac.dim();
        let m = Self::RESTART;
        self.n = n;
        let mut pre = new_solver(match self.direct {
            Direct::Dense => Choice::FaerDense,
            Direct::Sparse => Choice::FaerSparse,
        });
        pre.analyse(jac)?;
        self.preconditioner = Some(pre);
        self.ready = false;
        self.renew = true;
        self.basis = vec![0.0; n * (m + 1)];
        self.hess = vec![0.0; m * (m + 1)];
        self.cs = vec![0.0; m];
        self.sn = vec![0.0; m];
        self.g = vec![0.0; m + 1];
        self.y = vec![0.0; m];
        self.z = vec![0.0; n];
        self.w = vec![0.0; n];
        self.x = vec![0.0; n];
        self.rhs = vec![0.0; n];
        self.work = LinearWork::default();
        Ok(())
    }

    fn factor(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError> {
        self.fresh = self.renew || !self.ready;
        if self.fresh {
            self.renew_on(h)?;
        }
        Ok(())
    }

    fn solve_in_place(
        &mut self,
        h: &NewtonMatrix<'_>,
        b: &mut [f64],
        rtol: f64,
    ) -> Result<(), LinearSolveError> {
        if !self.ready {
            return Err(LinearSolveError::Singular);
        }
        if self.fresh {
            // Factored on this very matrix: it solves exactly, no iteration needed.
            return self.preconditioner().solve_in_place(h, b, 0.0);
        }
        self.rhs.copy_from_slice(b);
        let outcome = self.iterate(h, b, rtol.max(1e-14));
        let products = match outcome {
            Ok(p) | Err(p) => p,
        };
        self.work.products += products;
        if products > Self::RENEW_AFTER {
            self.renew = true;
        }
        if outcome.is_err() {
            // The preconditioner has gone stale: renew it on this matrix and solve directly.
            b.copy_from_slice(&self.rhs);
            self.renew_on(h)?;
            return self.preconditioner().solve_in_place(h, b, 0.0);
        }
        if all_finite(b) {
            Ok(())
        } else {
            Err(LinearSolveError::NotFinite)
        }
    }

    fn work(&self) -> LinearWork {
        self.work
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [[4, 1, 0], [1, 3, 1], [0, 1, 2]] with a duplicate entry split in two, plus the rank-one
    /// term (0, 1, 1)ᵀ(1, 0, 2) when `rank_one`.
    fn jacobian(rank_one: bool) -> Jacobian {
        let mut j = Jacobian::new(3);
        j.begin(3, true);
        for (r, c, v) in [
            (0, 0, 3.0),
            (0, 0, 1.0),
            (0, 1, 1.0),
            (1, 0, 1.0),
            (1, 1, 3.0),
            (1, 2, 1.0),
            (2, 1, 1.0),
            (2, 2, 2.0),
        ] {
            j.add(r, c, v);
        }
        if rank_one {
            j.add_rank_one([(1, 1.0), (2, 1.0)], [(0, 1.0), (2, 2.0)]);
        }
        j.finish().unwrap();
        j
    }

    fn dense_of(h: &NewtonMatrix<'_>) -> Vec<Vec<f64>> {
        let mut a = h.jac.to_dense();
        for (i, row) in a.iter_mut().enumerate() {
            for v in row.iter_mut() {
                *v *= h.row_scale[i];
            }
            row[i] += h.diag[i];
        }
        a
    }

    const ALL: [Choice; 4] = [
        Choice::FaerDense,
        Choice::FaerSparse,
        Choice::Krylov(Direct::Dense),
        Choice::Krylov(Direct::Sparse),
    ];

    #[test]
    fn every_backend_solves_sparse_plus_rank_one_systems() {
        for rank_one in [false, true] {
            let j = jacobian(rank_one);
            let (s, d) = ([1.0, 2.0, 0.5], [0.0, 0.25, 1.0]);
            let h = NewtonMatrix {
                jac: &j,
                row_scale: &s,
                diag: &d,
            };
            let a = dense_of(&h);
            for choice in ALL {
                let mut ls = new_solver(choice);
                ls.analyse(&j).unwrap();
                ls.factor(&h).unwrap();
                let mut x = vec![1.0, 2.0, 3.0];
                ls.solve_in_place(&h, &mut x, 1e-13).unwrap();
                for r in 0..3 {
                    let ax: f64 = (0..3).map(|c| a[r][c] * x[c]).sum();
                    assert!(
                        (ax - [1.0, 2.0, 3.0][r]).abs() < 1e-12,
                        "{choice:?} rank one {rank_one}: row {r}: {ax}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_lagged_preconditioner_still_gives_the_solution_of_the_new_matrix() {
        let j = jacobian(true);
        let s = [1.0, 1.0, 1.0];
        let mut ls = new_solver(Choice::Krylov(Direct::Dense));
        ls.analyse(&j).unwrap();
        for k in 0..4 {
            // The diagonal moves from step to step; the factorisation of the first stays.
            let d = [0.1 * k as f64, 0.0, 0.2 * k as f64];
            let h = NewtonMatrix {
                jac: &j,
                row_scale: &s,
                diag: &d,
            };
            ls.factor(&h).unwrap();
            let mut x = vec![1.0, -1.0, 2.0];
            ls.solve_in_place(&h, &mut x, 1e-13).unwrap();
            let mut y = vec![0.0; 3];
            h.mul(&x, &mut y);
            for (yi, bi) in y.iter().zip([1.0, -1.0, 2.0]) {
                assert!((yi - bi).abs() < 1e-11, "step {k}: {y:?}");
            }
        }
        assert_eq!(ls.work().factorisations, 1);
        assert!(ls.work().products > 0);
    }

    #[test]
    fn a_sparse_part_that_is_singular_alone_falls_back_to_dense() {
        // Sparse part [[1, 0], [0, 0]] is singular; with (0, 1)ᵀ(1, 1) the matrix
        // [[1, 0], [1, 1]] is not.
        let mut j = Jacobian::new(2);
        j.begin(2, true);
        j.add(0, 0, 1.0);
        j.add_rank_one([(1, 1.0)], [(0, 1.0), (1, 1.0)]);
        j.finish().unwrap();
        let (s, d) = ([1.0, 1.0], [0.0, 0.0]);
        let h = NewtonMatrix {
            jac: &j,
            row_scale: &s,
            diag: &d,
        };
        let mut ls = new_solver(Choice::FaerSparse);
        ls.analyse(&j).unwrap();
        ls.factor(&h).unwrap();
        let mut x = vec![2.0, 5.0];
        ls.solve_in_place(&h, &mut x, 0.0).unwrap();
        assert!((x[0] - 2.0).abs() < 1e-14 && (x[1] - 3.0).abs() < 1e-14, "{x:?}");
    }

    #[test]
    fn singular_is_an_error_not_nan() {
        let mut j = Jacobian::new(2);
        j.begin(2, true);
        for (r, c) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            j.add(r, c, 1.0);
        }
        j.finish().unwrap();
        let (s, d) = ([1.0, 1.0], [0.0, 0.0]);
        let h = NewtonMatrix {
            jac: &j,
            row_scale: &s,
            diag: &d,
        };
        for choice in ALL {
            let mut ls = new_solver(choice);
            ls.analyse(&j).unwrap();
            let res = ls.factor(&h).and_then(|_| {
                let mut b = vec![1.0, 2.0];
                ls.solve_in_place(&h, &mut b, 1e-12)
            });
            assert!(res.is_err(), "{choice:?}");
        }
    }
}
