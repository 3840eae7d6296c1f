//! Linear algebra of the Newton step behind one small trait: analyse a Jacobian's pattern
//! once, factor the Newton matrix `H = diag(d) + diag(s)·J` for new values, solve in place.
//!
//! `J` comes as sparse entries (some in index-free runs) plus rank-one terms ([`Jacobian`]).
//! Backends:
//! - [`FaerDenseLu`]: faer's blocked dense LU with partial pivoting (the rank-one terms formed
//!   into the matrix); two threads from 300 unknowns up (a fixed split, so the numbers do not
//!   depend on the machine's thread count).
//! - [`FaerSparseLu`]: faer's sparse LU (symbolic analysis and numeric storage kept between
//!   factorisations) of the matrix with its few dense rows and columns taken out, those and
//!   the rank-one terms applied by the Sherman–Morrison–Woodbury formula (a bordered
//!   factorisation: dense lines would otherwise fill the LU in); when what is left is singular
//!   it factors the whole matrix densely instead.
//! - [`Gmres`]: restarted GMRES on products with `H` (never formed: runs multiply as dense
//!   dots and axpys), right-preconditioned by the sparse LU of `H` without its runs, factored
//!   afresh at every step: Newton–Krylov whose preconditioner is the structured part of the
//!   Jacobian, for matrices dominated by dense input-output blocks.
//!
//! `Backend::Auto` picks by size, runs and density ([`choose`]); `docs/performance.md` has the
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
    /// GMRES preconditioned by the sparse LU of the Newton matrix without its runs.
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
/// Beyond `DENSE_LIMIT`, `Backend::Auto` runs GMRES when at least this fraction of the
/// Jacobian's entries lie in runs (dense input-output blocks the structured preconditioner
/// leaves out)...
pub const KRYLOV_RUNS: f64 = 0.25;
/// ...and otherwise factors densely when the matrix, rank-one terms formed, would have at least
/// this fraction of n² entries, up to `DENSE_PATTERN_LIMIT` unknowns; sparse beyond.
pub const DENSE_FILL: f64 = 0.1;
pub const DENSE_PATTERN_LIMIT: usize = 3000;
/// Unknowns from which the dense LU runs on two threads.
pub const PARALLEL_FROM: usize = 300;

/// A resolved backend choice (what `Auto` became for a given size and pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    FaerDense,
    FaerSparse,
    Krylov,
}

/// Resolves a backend for a Jacobian (its size, sparse entries, runs and rank-one terms).
pub fn choose(backend: Backend, jac: &Jacobian) -> Choice {
    match backend {
        Backend::Dense => Choice::FaerDense,
        Backend::Sparse => Choice::FaerSparse,
        Backend::Krylov => Choice::Krylov,
        Backend::Auto => {
            let n = jac.dim();
            let entries = jac.nnz().max(1);
            if n <= DENSE_LIMIT {
                Choice::FaerDense
            } else if jac.run_entries() as f64 >= KRYLOV_RUNS * entries as f64 {
                Choice::Krylov
            } else {
                direct_choice(jac)
            }
        }
    }
}

/// Dense or sparse LU by size and fill.
fn direct_choice(jac: &Jacobian) -> Choice {
    let n = jac.dim();
    let dense = n <= DENSE_LIMIT
        || (n <= DENSE_PATTERN_LIMIT && jac.fill_estimate() as f64 >= DENSE_FILL * (n * n) as f64);
    if dense {
        Choice::FaerDense
    } else {
        Choice::FaerSparse
    }
}

/// A fresh solver of a choice.
pub fn new_solver(choice: Choice) -> Box<dyn LinearSolver> {
    match choice {
        Choice::FaerDense => Box::<FaerDenseLu>::default(),
        Choice::FaerSparse => Box::<FaerSparseLu>::default(),
        Choice::Krylov => Box::<Gmres>::default(),
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
    /// `y = H x` (`spare`: scratch of a split product, see [`Jacobian::mul_add`]).
    pub fn mul(&self, x: &[f64], y: &mut [f64], spare: &mut Vec<f64>) {
        for i in 0..y.len() {
            y[i] = self.diag[i] * x[i];
        }
        self.jac.mul_add(self.row_scale, x, y, spare);
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
            dense_factor::lu_in_place_scratch::<usize, f64>(n, n, self.par, Default::default()).or(
                dense_solve::solve_in_place_scratch::<usize, f64>(n, 1, self.par),
            );
        self.scratch = Some(MemBuffer::new(req));
    }

    /// Forms `H` densely: sparse entries, diagonal and every rank-one term.
    fn assemble(&mut self, h: &NewtonMatrix<'_>) {
        let a = &mut self.lu;
        a.fill(0.0);
        h.jac.for_each_entry(true, |_, r, c, v| {
            if r != DROPPED && c != DROPPED {
                let (r, c) = (r as usize, c as usize);
                a[(r, c)] += h.row_scale[r] * v;
            }
        });
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

/// faer's sparse LU of the sparse part, with its few dense lines and the rank-one terms by
/// Sherman–Morrison–Woodbury.
///
/// A row or column with more than [`FaerSparseLu::line_limit`] entries (a consumer's income
/// row, a factor market's row, a price that enters every zero-profit row) would fill the LU
/// in; the variables of such lines form a set L, and with `A'` the matrix whose rows and
/// columns in L are replaced by the identity's,
/// `H = A' + Σ_{i∈L} e_i (H[i,:] − e_iᵀ) + Σ_{i∈L} H[∉L, i] e_iᵀ + Σ_t û_t v_tᵀ = A' + U Vᵀ`.
/// Then `H⁻¹b = y − W C⁻¹ Vᵀ y` with `y = A'⁻¹b`, `W = A'⁻¹U` and `C = I + VᵀW` (k × k). The
/// compressed-column pattern of `A'`, the slots of its entries, the symbolic factorisation and
/// all storage are built once; each factorisation walks the Jacobian's entries with their
/// values ([`Jacobian::for_each_entry`]: a run's may not be stored, only formed from its
/// source) and sends each to its slot of `A'` or its line of U or V.
#[derive(Default)]
pub struct FaerSparseLu {
    n: usize,
    col_ptr: Vec<u32>,
    row_idx: Vec<u32>,
    /// The slot in `values` of each entry of `A'` (the thin entries: none dropped, neither
    /// index in a dense line), in emission order (a preconditioner's runs are not visited at
    /// all), and the slot of each diagonal element.
    slots: Vec<u32>,
    diag_slot: Vec<u32>,
    values: Vec<f64>,
    symbolic: Option<SymbolicLu<u32>>,
    numeric: NumericLu<u32, f64>,
    scratch: Option<MemBuffer>,
    /// The dense lines (L), whether each index is one, and each line's rank in L.
    lines: Vec<u32>,
    in_lines: Vec<bool>,
    line_rank: Vec<u32>,
    /// U, V and W = A'⁻¹U (n × k each, column-major), C's LU, scratch of length k.
    u: Vec<f64>,
    v: Vec<f64>,
    w: Vec<f64>,
    capacitance: FaerDenseLu,
    small: Vec<f64>,
    /// Set when `A'` is singular: the whole matrix factored densely.
    dense: Option<FaerDenseLu>,
    /// Leave the Jacobian's runs out (an approximate factorisation, for a preconditioner).
    skip_runs: bool,
    factored: bool,
    work: LinearWork,
}

impl FaerSparseLu {
    /// Entries beyond which a row or column counts as dense.
    fn line_limit(n: usize) -> usize {
        ((3.0 * (n as f64).sqrt()) as usize).max(24)
    }
    /// Most dense lines taken out (each costs two sparse solves per factorisation).
    const MAX_LINES: usize = 64;

    fn pattern(&self) -> SymbolicSparseColMatRef<'_, u32> {
        SymbolicSparseColMatRef::new_checked(self.n, self.n, &self.col_ptr, None, &self.row_idx)
    }

    /// Number of Woodbury columns: two per dense line and the Jacobian's rank-one terms.
    fn width(&self, jac: &Jacobian) -> usize {
        2 * self.lines.len() + jac.rank()
    }

    fn solve_sparse(&mut self, b: &mut [f64]) {
        let symbolic = self.symbolic.as_ref().expect("analysed");
        // Within faer's contract: `numeric` came from this symbolic analysis.
        let lu = faer::sparse::linalg::lu::LuRef::new_unchecked(symbolic, &self.numeric);
        let rhs = MatMut::from_column_major_slice_mut(b, self.n, 1);
        let stack = MemStack::new(self.scratch.as_mut().expect("analysed"));
        lu.solve_in_place_with_conj(faer::Conj::No, rhs, Par::Seq, stack);
    }

    /// The values of `A'` and of U and V from one walk over the Jacobian's entries: a thin
    /// entry into its slot, an entry of a dense line's row into that line's row term
    /// `e_i (H[i,:] − e_iᵀ)` (V's column t), one of its column outside L into its column term
    /// `H[∉L, i] e_iᵀ` (U's column nl + t); then the diagonal and the rank-one terms.
    fn fill(&mut self, h: &NewtonMatrix<'_>) {
        let n = self.n;
        let nl = self.lines.len();
        self.values.iter_mut().for_each(|v| *v = 0.0);
        self.u.iter_mut().for_each(|x| *x = 0.0);
        self.v.iter_mut().for_each(|x| *x = 0.0);
        let (values, u, v) = (&mut self.values, &mut self.u, &mut self.v);
        let (slots, in_lines, line_rank) = (&self.slots, &self.in_lines, &self.line_rank);
        let mut thin = 0;
        h.jac.for_each_entry(!self.skip_runs, |_, r, c, x| {
            if r == DROPPED || c == DROPPED {
                return;
            }
            let (r, c) = (r as usize, c as usize);
            if in_lines[r] {
                let t = line_rank[r] as usize;
                v[t * n + c] += h.row_scale[r] * x;
            } else if in_lines[c] {
                let t = line_rank[c] as usize;
                u[(nl + t) * n + r] += h.row_scale[r] * x;
            } else {
                values[slots[thin] as usize] += h.row_scale[r] * x;
                thin += 1;
            }
        });
        for (i, &s) in self.diag_slot.iter().enumerate() {
            self.values[s as usize] += if self.in_lines[i] { 1.0 } else { h.diag[i] };
        }
        for (t, &i) in self.lines.iter().enumerate() {
            let i = i as usize;
            self.u[t * n + i] = 1.0;
            self.v[t * n + i] += h.diag[i] - 1.0;
            self.v[(nl + t) * n + i] = 1.0;
        }
        for q in 0..h.jac.rank() {
            let t = 2 * nl + q;
            let ((ru, uq), (cv, vq)) = h.jac.term(q);
            for (&r, &x) in ru.iter().zip(uq) {
                if r != DROPPED {
                    self.u[t * n + r as usize] += h.row_scale[r as usize] * x;
                }
            }
            for (&c, &x) in cv.iter().zip(vq) {
                if c != DROPPED {
                    self.v[t * n + c as usize] += x;
                }
            }
        }
    }

    /// W = A'⁻¹U and the LU of C = I + VᵀW (U and V filled by [`FaerSparseLu::fill`]).
    fn woodbury(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError> {
        let n = self.n;
        let k = self.width(h.jac);
        let mut w = std::mem::take(&mut self.w);
        w.copy_from_slice(&self.u);
        for t in 0..k {
            self.solve_sparse(&mut w[t * n..(t + 1) * n]);
        }
        let c = &mut self.capacitance.lu;
        for i in 0..k {
            let vi = &self.v[i * n..(i + 1) * n];
            for j in 0..k {
                let wj = &w[j * n..(j + 1) * n];
                let dot: f64 = vi.iter().zip(wj).map(|(a, b)| a * b).sum();
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
        self.fill(h);
        let symbolic = self.symbolic.as_ref().expect("analysed");
        let pattern = SymbolicSparseColMatRef::new_checked(
            self.n,
            self.n,
            &self.col_ptr,
            None,
            &self.row_idx,
        );
        let a = SparseColMatRef::new(pattern, &self.values);
        let stack = MemStack::new(self.scratch.as_mut().expect("analysed"));
        symbolic
            .factorize_numeric_lu(&mut self.numeric, a, Par::Seq, stack, Default::default())
            .map_err(|_| LinearSolveError::Singular)?;
        self.work.factorisations += 1;
        if self.width(h.jac) > 0 {
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
        // The entries A' is made of (none dropped; a preconditioner's runs left out), walked
        // afresh by each pass below rather than listed: no array over every entry is held
        // (at N = 5000 the runs alone are 50 million entries).
        let runs = !self.skip_runs;
        let each_kept = |mut f: Box<dyn FnMut(usize, usize) + '_>| {
            jac.for_each_entry(runs, |_, r, c, _| {
                if r != DROPPED && c != DROPPED {
                    f(r as usize, c as usize);
                }
            });
        };
        // Dense lines: rows or columns with many entries.
        let (mut per_row, mut per_col) = (vec![0usize; n], vec![0usize; n]);
        each_kept(Box::new(|r, c| {
            per_row[r] += 1;
            per_col[c] += 1;
        }));
        let limit = Self::line_limit(n);
        self.in_lines = (0..n)
            .map(|i| per_row[i] > limit || per_col[i] > limit)
            .collect();
        self.lines = (0..n as u32)
            .filter(|&i| self.in_lines[i as usize])
            .collect();
        if self.lines.len() > Self::MAX_LINES {
            self.lines.clear();
            self.in_lines.iter_mut().for_each(|l| *l = false);
        }
        let mut line_rank = vec![u32::MAX; n];
        for (t, &i) in self.lines.iter().enumerate() {
            line_rank[i as usize] = t as u32;
        }
        self.line_rank = line_rank;
        let in_lines = &self.in_lines;
        // The thin entries (outside the dense lines), numbered in emission order.
        let each_thin = |mut f: Box<dyn FnMut(usize, usize) + '_>| {
            each_kept(Box::new(|r, c| {
                if !in_lines[r] && !in_lines[c] {
                    f(r, c);
                }
            }));
        };
        // Compressed columns of A' by a counting sort: the thin entries and the diagonal, each
        // distinct position one slot.
        let mut count = vec![0u32; n + 1];
        let mut len = 0usize;
        each_thin(Box::new(|_, c| {
            count[c + 1] += 1;
            len += 1;
        }));
        for i in 0..n {
            count[i + 1] += 1;
        }
        for j in 0..n {
            count[j + 1] += count[j];
        }
        // (row, source) per column: source < len for the thin entry of that number, len + i
        // for diagonal i.
        let mut by_column = vec![(0u32, 0u32); count[n] as usize];
        let mut next = count.clone();
        let mut place = |c: usize, r: u32, src: u32| {
            by_column[next[c] as usize] = (r, src);
            next[c] += 1;
        };
        let mut t = 0u32;
        each_thin(Box::new(|r, c| {
            place(c, r as u32, t);
            t += 1;
        }));
        for i in 0..n {
            place(i, i as u32, (len + i) as u32);
        }
        let mut slot = vec![DROPPED; len];
        self.diag_slot = vec![0; n];
        self.col_ptr = vec![0; n + 1];
        self.row_idx.clear();
        for j in 0..n {
            let column = &mut by_column[count[j] as usize..count[j + 1] as usize];
            column.sort_unstable();
            let mut last = None;
            for &(r, src) in column.iter() {
                if last != Some(r) {
                    self.row_idx.push(r);
                    last = Some(r);
                }
                let s = (self.row_idx.len() - 1) as u32;
                if (src as usize) < len {
                    slot[src as usize] = s;
                } else {
                    self.diag_slot[src as usize - len] = s;
                }
            }
            self.col_ptr[j + 1] = self.row_idx.len() as u32;
        }
        self.slots = slot;
        self.values = vec![0.0; self.row_idx.len()];
        let symbolic = factorize_symbolic_lu(self.pattern(), Default::default())
            .map_err(|_| LinearSolveError::Singular)?;
        let req = symbolic
            .factorize_numeric_lu_scratch::<f64>(Par::Seq, Default::default())
            .or(symbolic.solve_in_place_scratch::<f64>(1, Par::Seq));
        self.scratch = Some(MemBuffer::new(req));
        self.symbolic = Some(symbolic);
        let k = self.width(jac);
        self.u = vec![0.0; n * k];
        self.v = vec![0.0; n * k];
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
                // A' may be singular where the whole matrix is not (a market cleared by final
                // demand alone): factor the whole densely from now on.
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
        let (n, k) = (self.n, self.width(h.jac));
        if k > 0 {
            for t in 0..k {
                let vt = &self.v[t * n..(t + 1) * n];
                self.small[t] = vt.iter().zip(b.iter()).map(|(a, b)| a * b).sum();
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

/// Restarted GMRES (modified Gram–Schmidt, Givens rotations), right-preconditioned by the
/// sparse LU of the Newton matrix without its runs ([`FaerSparseLu`] leaving the dense
/// input-output blocks out, dense lines by Woodbury): cheap to factor afresh at every step, and
/// close enough that GMRES needs a few products with the whole matrix (never formed: runs are
/// multiplied as dense dots and axpys). If GMRES does not converge, the step is solved exactly
/// by a direct factorisation chosen like `Backend::Auto`'s.
pub struct Gmres {
    preconditioner: FaerSparseLu,
    /// The exact fallback, made when first needed.
    exact: Option<Box<dyn LinearSolver>>,
    factored: bool,
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
    /// Scratch of split products.
    spare: Vec<f64>,
    /// The right-hand side, kept for the exact fallback.
    rhs: Vec<f64>,
    work: LinearWork,
}

impl Default for Gmres {
    fn default() -> Self {
        Gmres {
            preconditioner: FaerSparseLu {
                skip_runs: true,
                ..Default::default()
            },
            exact: None,
            factored: false,
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
            spare: Vec::new(),
            rhs: Vec::new(),
            work: LinearWork::default(),
        }
    }
}

impl Gmres {
    /// Krylov vectors kept before a restart.
    pub const RESTART: usize = 40;
    /// Restarts before GMRES gives up (and the exact fallback solves the step).
    pub const MAX_RESTARTS: usize = 3;
    /// Relative targets from which a first cycle's own residual estimate is trusted (√ε).
    pub const TRUSTED_RTOL: f64 = 1.5e-8;

    /// Solves `H x = b` into `b`; `Ok(products)` when the residual fell to `rtol·‖b‖`,
    /// `Err(products)` otherwise.
    fn iterate(&mut self, h: &NewtonMatrix<'_>, b: &mut [f64], rtol: f64) -> Result<u64, u64> {
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
        for restart in 0..=Self::MAX_RESTARTS {
            let first_cycle = restart == 0;
            for (vi, wi) in self.basis[..n].iter_mut().zip(&self.w) {
                *vi = wi / beta;
            }
            self.g.iter_mut().for_each(|v| *v = 0.0);
            self.g[0] = beta;
            let mut k = 0;
            let mut resid = beta;
            while k < m {
                // w = H M⁻¹ v_k
                self.z.copy_from_slice(&self.basis[k * n..(k + 1) * n]);
                if self
                    .preconditioner
                    .solve_in_place(h, &mut self.z, 0.0)
                    .is_err()
                {
                    return Err(products);
                }
                h.mul(&self.z, &mut self.w, &mut self.spare);
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
            if !resid.is_finite() {
                return Err(products);
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
                let yj = self.y[j];
                for (zi, vi) in self.z.iter_mut().zip(&self.basis[j * n..(j + 1) * n]) {
                    *zi += yj * vi;
                }
            }
            if self
                .preconditioner
                .solve_in_place(h, &mut self.z, 0.0)
                .is_err()
            {
                return Err(products);
            }
            for (xi, zi) in self.x.iter_mut().zip(&self.z) {
                *xi += zi;
            }
            // A first cycle that met a target of at least √ε·‖b‖ is trusted: the recurrence's
            // residual drifts from the true one by about ε·κ(H M⁻¹)·‖b‖, far below such a
            // target when the preconditioned matrix let GMRES converge without a restart, and
            // the true residual would cost one more product (a pass over the input-output
            // block at scale: a quarter of a Newton step's products). Tighter targets, and
            // restarted solves, check the true residual.
            if first_cycle && resid <= target && rtol >= Self::TRUSTED_RTOL {
                b.copy_from_slice(&self.x);
                return Ok(products);
            }
            // The true residual decides (the recurrence drifts in finite precision).
            h.mul(&self.x, &mut self.w, &mut self.spare);
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
        Err(products)
    }

    /// Solves exactly with a direct factorisation (when GMRES did not converge).
    fn solve_exactly(
        &mut self,
        h: &NewtonMatrix<'_>,
        b: &mut [f64],
    ) -> Result<(), LinearSolveError> {
        if self.exact.is_none() {
            let mut d = new_solver(direct_choice(h.jac));
            d.analyse(h.jac)?;
            self.exact = Some(d);
        }
        let d = self.exact.as_mut().expect("made above");
        self.work.factorisations += 1;
        d.factor(h)?;
        d.solve_in_place(h, b, 0.0)
    }
}

impl LinearSolver for Gmres {
    fn analyse(&mut self, jac: &Jacobian) -> Result<(), LinearSolveError> {
        let n = jac.dim();
        let m = Self::RESTART;
        self.n = n;
        self.preconditioner.analyse(jac)?;
        self.exact = None;
        self.factored = false;
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
        self.spare = vec![0.0; n];
        self.work = LinearWork::default();
        Ok(())
    }

    fn factor(&mut self, h: &NewtonMatrix<'_>) -> Result<(), LinearSolveError> {
        self.factored = false;
        self.preconditioner.factor(h)?;
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
        self.rhs.copy_from_slice(b);
        let outcome = self.iterate(h, b, rtol.max(1e-14));
        let (Ok(products) | Err(products)) = outcome;
        self.work.products += products;
        if outcome.is_err() {
            b.copy_from_slice(&self.rhs);
            self.solve_exactly(h, b)?;
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

    const ALL: [Choice; 3] = [Choice::FaerDense, Choice::FaerSparse, Choice::Krylov];

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

    /// A 60 × 60 system with what the peers' economy has: a dense run per column block, a
    /// dense row and a dense column (lines the sparse LU takes out), a rank-one term and a
    /// diagonal; every backend must solve it to rounding.
    fn structured(n: usize) -> Jacobian {
        let mut j = Jacobian::new(n);
        j.begin(n, true);
        for i in 0..n {
            j.add(i, i, 4.0 + (i % 7) as f64);
            if i + 1 < n {
                j.add(i, i + 1, -1.0);
            }
        }
        // Runs: row 3 over columns 10..50, column 5 over rows 10..50 (like an IO column).
        j.add_row_run((3, 10), (0..40).map(|k| 0.01 * (k % 5) as f64), false);
        j.add_col_run((10, 5), (0..40).map(|k| -0.02 * (k % 3) as f64), false);
        // A dense row and a dense column beyond the runs.
        for c in 0..n {
            j.add(n - 1, c, 0.05);
            j.add(c, n - 2, 0.03);
        }
        j.add_rank_one(
            (0..n).map(|r| (r, 0.01)),
            (0..n).map(|c| (c, 0.1 * (c % 4) as f64)),
        );
        j.finish().unwrap();
        j
    }

    #[test]
    fn dense_lines_runs_and_rank_one_terms_solve_exactly_with_every_backend() {
        let n = 60;
        let j = structured(n);
        let s: Vec<f64> = (0..n).map(|i| 1.0 + 0.01 * i as f64).collect();
        let d: Vec<f64> = (0..n).map(|i| 0.1 * (i % 2) as f64).collect();
        let h = NewtonMatrix {
            jac: &j,
            row_scale: &s,
            diag: &d,
        };
        let a = dense_of(&h);
        let b: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        for choice in ALL {
            let mut ls = new_solver(choice);
            ls.analyse(&j).unwrap();
            ls.factor(&h).unwrap();
            let mut x = b.clone();
            ls.solve_in_place(&h, &mut x, 1e-13).unwrap();
            for r in 0..n {
                let ax: f64 = (0..n).map(|c| a[r][c] * x[c]).sum();
                assert!(
                    (ax - b[r]).abs() < 1e-11,
                    "{choice:?}: row {r}: {ax} vs {}",
                    b[r]
                );
            }
            if choice == Choice::Krylov {
                // The runs left out of the preconditioner: GMRES iterates, with few products.
                let w = ls.work();
                assert!(w.products >= 2 && w.products <= 20, "{w:?}");
            }
        }
    }

    /// The cyclic shift `(J x)_i = x_{(i + 1) mod n}` made of what a preconditioner leaves
    /// out: each row a scattered 1 on the diagonal plus sourced runs (values not stored) that
    /// cancel it and put the 1 right of it, the wrap-around a weighted sourced column run.
    fn cyclic_shift(n: usize) -> Jacobian {
        let data: std::sync::Arc<[f64]> = vec![-1.0, 1.0, 0.5].into();
        let mut weights = vec![1.0; n];
        weights[n - 1] = 0.5;
        let mut j = Jacobian::new(n);
        j.begin(n, true);
        j.set_row_weights(&weights);
        for i in 0..n {
            j.add(i, i, 1.0);
            let len = if i + 1 < n { 2 } else { 1 };
            j.add_row_run_shared((i, i), &data, 0..len, 1.0);
        }
        // 4 · 0.5 · 0.5 = 1 at (n − 1, 0).
        j.add_col_run_shared((n - 1, 0), &data, 2..3, 4.0);
        j.finish().unwrap();
        j
    }

    #[test]
    fn gmres_that_stalls_falls_back_to_an_exact_solve_of_the_sourced_runs() {
        // The preconditioner (the scattered part: the identity) is useless and restarted
        // GMRES stagnates on the shift with b = e_0 (each Krylov vector is orthogonal to the
        // residual) until the exact fallback, here the sparse LU, solves the step.
        let n = 200;
        let j = cyclic_shift(n);
        assert_eq!((j.nnz(), j.run_entries()), (3 * n, 2 * n));
        let (s, d) = (vec![1.0; n], vec![0.0; n]);
        let h = NewtonMatrix {
            jac: &j,
            row_scale: &s,
            diag: &d,
        };
        let a = dense_of(&h);
        assert_eq!(
            (a[0][1], a[0][0], a[n - 1][0], a[n - 1][n - 1]),
            (1.0, 0.0, 1.0, 0.0)
        );
        let mut b = vec![0.0; n];
        b[0] = 3.0;
        let mut dense = new_solver(Choice::FaerDense);
        dense.analyse(&j).unwrap();
        dense.factor(&h).unwrap();
        let mut want = b.clone();
        dense.solve_in_place(&h, &mut want, 0.0).unwrap();
        assert_eq!(direct_choice(&j), Choice::FaerSparse);
        let mut gmres = new_solver(Choice::Krylov);
        gmres.analyse(&j).unwrap();
        gmres.factor(&h).unwrap();
        let mut x = b.clone();
        gmres.solve_in_place(&h, &mut x, 1e-10).unwrap();
        let work = gmres.work();
        let cycles = (Gmres::MAX_RESTARTS + 1) as u64;
        assert_eq!(
            work.products,
            cycles * (Gmres::RESTART as u64 + 1),
            "{work:?}"
        );
        // The preconditioner's factorisation and the exact one.
        assert_eq!(work.factorisations, 2, "{work:?}");
        // x_1 = 3, every other 0: the dense solution, and H x = b.
        for i in 0..n {
            assert!(
                (x[i] - want[i]).abs() < 1e-13,
                "{i}: {} vs {}",
                x[i],
                want[i]
            );
            let ax: f64 = (0..n).map(|c| a[i][c] * x[c]).sum();
            assert!((ax - b[i]).abs() < 1e-13, "row {i}: {ax}");
        }
        assert!((x[1] - 3.0).abs() < 1e-13);
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
        assert!(
            (x[0] - 2.0).abs() < 1e-14 && (x[1] - 3.0).abs() < 1e-14,
            "{x:?}"
        );
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
