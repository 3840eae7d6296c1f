//! Linear algebra behind one small trait: analyse a pattern once, factor values into storage
//! sized up front, solve in place.
//!
//! Backends: faer's blocked dense LU with partial pivoting (the default for small or dense
//! matrices), faer's sparse LU (symbolic analysis and numeric storage kept between
//! factorisations), and nalgebra's dense LU (kept for comparison; `docs/performance.md` has
//! the measurements that chose the defaults). A new backend is one type implementing
//! [`LinearSolver`] plus one [`Backend`] variant.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::{factor as dense_factor, solve as dense_solve};
use faer::perm::PermRef;
use faer::sparse::linalg::lu::{factorize_symbolic_lu, NumericLu, SymbolicLu};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use faer::{Mat, MatMut, Par};

/// Why a linear solve failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinearSolveError {
    #[error("the matrix is singular")]
    Singular,
    #[error("the solution is not finite")]
    NotFinite,
}

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Dense up to `DENSE_LIMIT` unknowns or for dense patterns, sparse otherwise.
    Auto,
    /// faer's dense LU.
    Dense,
    /// faer's sparse LU.
    Sparse,
    /// nalgebra's dense LU.
    #[serde(rename = "dense-nalgebra")]
    DenseNalgebra,
}

/// Unknowns up to which `Backend::Auto` factors densely.
pub const DENSE_LIMIT: usize = 150;
/// Above `DENSE_LIMIT`, `Backend::Auto` still factors densely while there are at least
/// `DENSE_FILL · n²` entries, up to this many unknowns.
pub const DENSE_PATTERN_LIMIT: usize = 3000;
pub const DENSE_FILL: f64 = 0.1;

/// A resolved backend choice (what `Auto` became for a given size and pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    FaerDense,
    FaerSparse,
    NalgebraDense,
}

/// Resolves a backend for an n×n matrix with `entries` pattern entries.
pub fn choose(backend: Backend, n: usize, entries: usize) -> Choice {
    match backend {
        Backend::Dense => Choice::FaerDense,
        Backend::Sparse => Choice::FaerSparse,
        Backend::DenseNalgebra => Choice::NalgebraDense,
        // A dense pattern (CES demand systems make price blocks dense) factors faster densely
        // well beyond DENSE_LIMIT.
        Backend::Auto => {
            if n <= DENSE_LIMIT
                || (n <= DENSE_PATTERN_LIMIT && entries as f64 >= DENSE_FILL * (n * n) as f64)
            {
                Choice::FaerDense
            } else {
                Choice::FaerSparse
            }
        }
    }
}

/// A fresh solver of a choice.
pub fn new_solver(choice: Choice) -> Box<dyn LinearSolver> {
    match choice {
        Choice::FaerDense => Box::<FaerDenseLu>::default(),
        Choice::FaerSparse => Box::<FaerSparseLu>::default(),
        Choice::NalgebraDense => Box::<NalgebraDenseLu>::default(),
    }
}

/// A square linear solver: the pattern once, then values and solves as often as needed.
pub trait LinearSolver: Send {
    /// Prepares for n×n matrices whose entries come as (rows[k], cols[k]) pairs, duplicates
    /// adding up; storage is sized here.
    fn analyse(&mut self, n: usize, rows: &[usize], cols: &[usize])
        -> Result<(), LinearSolveError>;
    /// Factors the matrix with entry values `values` (in pattern order).
    fn factor(&mut self, values: &[f64]) -> Result<(), LinearSolveError>;
    /// Overwrites `b` with the solution of A x = b for the last factored matrix.
    fn solve_in_place(&mut self, b: &mut [f64]) -> Result<(), LinearSolveError>;
}

/// faer's dense LU with partial pivoting, factored in place.
pub struct FaerDenseLu {
    n: usize,
    /// (row, column) of each pattern entry.
    slot: Vec<(usize, usize)>,
    lu: Mat<f64>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    scratch: Option<MemBuffer>,
}

impl Default for FaerDenseLu {
    fn default() -> Self {
        FaerDenseLu {
            n: 0,
            slot: Vec::new(),
            lu: Mat::zeros(0, 0),
            perm: Vec::new(),
            perm_inv: Vec::new(),
            scratch: None,
        }
    }
}

impl LinearSolver for FaerDenseLu {
    fn analyse(
        &mut self,
        n: usize,
        rows: &[usize],
        cols: &[usize],
    ) -> Result<(), LinearSolveError> {
        self.n = n;
        self.lu = Mat::zeros(n, n);
        self.slot = rows.iter().copied().zip(cols.iter().copied()).collect();
        self.perm = vec![0; n];
        self.perm_inv = vec![0; n];
        let req =
            dense_factor::lu_in_place_scratch::<usize, f64>(n, n, Par::Seq, Default::default()).or(
                dense_solve::solve_in_place_scratch::<usize, f64>(n, 1, Par::Seq),
            );
        self.scratch = Some(MemBuffer::new(req));
        Ok(())
    }

    fn factor(&mut self, values: &[f64]) -> Result<(), LinearSolveError> {
        let n = self.n;
        self.lu.fill(0.0);
        for (&(r, c), &v) in self.slot.iter().zip(values) {
            self.lu[(r, c)] += v;
        }
        let a: MatMut<'_, f64> = self.lu.as_mut();
        let stack = MemStack::new(self.scratch.as_mut().expect("analysed"));
        dense_factor::lu_in_place(
            a,
            &mut self.perm,
            &mut self.perm_inv,
            Par::Seq,
            stack,
            Default::default(),
        );
        // A zero pivot makes the triangular solve divide by zero: report it here.
        let diag_ok = (0..n).all(|i| {
            let d = self.lu[(i, i)];
            d != 0.0 && d.is_finite()
        });
        if diag_ok {
            Ok(())
        } else {
            Err(LinearSolveError::Singular)
        }
    }

    fn solve_in_place(&mut self, b: &mut [f64]) -> Result<(), LinearSolveError> {
        let n = self.n;
        let perm = PermRef::new_checked(&self.perm, &self.perm_inv, n);
        let rhs = MatMut::from_column_major_slice_mut(b, n, 1);
        let stack = MemStack::new(self.scratch.as_mut().expect("analysed"));
        let lu = self.lu.as_ref();
        dense_solve::solve_in_place(lu, lu, perm, rhs, Par::Seq, stack);
        Ok(())
    }
}

/// faer's sparse LU: the compressed-column pattern, the map from pattern entries to its
/// slots, the symbolic factorisation and the numeric storage are all built once.
#[derive(Default)]
pub struct FaerSparseLu {
    n: usize,
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
    /// Slot in `values` of each pattern entry (duplicates share a slot).
    slot: Vec<usize>,
    values: Vec<f64>,
    symbolic: Option<SymbolicLu<usize>>,
    numeric: NumericLu<usize, f64>,
    scratch: Option<MemBuffer>,
    factored: bool,
}

impl FaerSparseLu {
    fn pattern(&self) -> SymbolicSparseColMatRef<'_, usize> {
        SymbolicSparseColMatRef::new_checked(self.n, self.n, &self.col_ptr, None, &self.row_idx)
    }
}

impl LinearSolver for FaerSparseLu {
    fn analyse(
        &mut self,
        n: usize,
        rows: &[usize],
        cols: &[usize],
    ) -> Result<(), LinearSolveError> {
        self.n = n;
        // Sort entries by (column, row) and give each distinct position one slot.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_unstable_by_key(|&k| (cols[k], rows[k]));
        self.col_ptr = vec![0; n + 1];
        self.row_idx.clear();
        self.slot = vec![0; rows.len()];
        let mut last: Option<(usize, usize)> = None;
        for &k in &order {
            let key = (cols[k], rows[k]);
            if last != Some(key) {
                self.row_idx.push(rows[k]);
                self.col_ptr[cols[k] + 1] += 1;
                last = Some(key);
            }
            self.slot[k] = self.row_idx.len() - 1;
        }
        for j in 0..n {
            self.col_ptr[j + 1] += self.col_ptr[j];
        }
        self.values = vec![0.0; self.row_idx.len()];
        let symbolic = factorize_symbolic_lu(self.pattern(), Default::default())
            .map_err(|_| LinearSolveError::Singular)?;
        let req = symbolic
            .factorize_numeric_lu_scratch::<f64>(Par::Seq, Default::default())
            .or(symbolic.solve_in_place_scratch::<f64>(1, Par::Seq));
        self.scratch = Some(MemBuffer::new(req));
        self.symbolic = Some(symbolic);
        self.factored = false;
        Ok(())
    }

    fn factor(&mut self, values: &[f64]) -> Result<(), LinearSolveError> {
        self.values.iter_mut().for_each(|v| *v = 0.0);
        for (&s, &v) in self.slot.iter().zip(values) {
            self.values[s] += v;
        }
        self.factored = false;
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
        self.factored = true;
        Ok(())
    }

    fn solve_in_place(&mut self, b: &mut [f64]) -> Result<(), LinearSolveError> {
        if !self.factored {
            return Err(LinearSolveError::Singular);
        }
        let symbolic = self.symbolic.as_ref().expect("analysed");
        // Safe in the sense of faer's contract: `numeric` came from this symbolic analysis.
        let lu = faer::sparse::linalg::lu::LuRef::new_unchecked(symbolic, &self.numeric);
        let rhs = MatMut::from_column_major_slice_mut(b, self.n, 1);
        let stack = MemStack::new(self.scratch.as_mut().expect("analysed"));
        lu.solve_in_place_with_conj(faer::Conj::No, rhs, Par::Seq, stack);
        Ok(())
    }
}

/// nalgebra's dense LU (unblocked).
#[derive(Default)]
pub struct NalgebraDenseLu {
    n: usize,
    rows: Vec<usize>,
    cols: Vec<usize>,
    lu: Option<nalgebra::LU<f64, nalgebra::Dyn, nalgebra::Dyn>>,
}

impl LinearSolver for NalgebraDenseLu {
    fn analyse(
        &mut self,
        n: usize,
        rows: &[usize],
        cols: &[usize],
    ) -> Result<(), LinearSolveError> {
        self.n = n;
        self.rows = rows.to_vec();
        self.cols = cols.to_vec();
        Ok(())
    }
    fn factor(&mut self, values: &[f64]) -> Result<(), LinearSolveError> {
        let mut a = nalgebra::DMatrix::<f64>::zeros(self.n, self.n);
        for ((&r, &c), &v) in self.rows.iter().zip(&self.cols).zip(values) {
            a[(r, c)] += v;
        }
        let lu = a.lu();
        if lu.is_invertible() {
            self.lu = Some(lu);
            Ok(())
        } else {
            self.lu = None;
            Err(LinearSolveError::Singular)
        }
    }
    fn solve_in_place(&mut self, b: &mut [f64]) -> Result<(), LinearSolveError> {
        let lu = self.lu.as_ref().ok_or(LinearSolveError::Singular)?;
        let mut rhs = nalgebra::DVectorViewMut::from_slice(b, self.n);
        if lu.solve_mut(&mut rhs) {
            Ok(())
        } else {
            Err(LinearSolveError::Singular)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> (Vec<usize>, Vec<usize>, Vec<f64>, Vec<f64>) {
        // [[4, 1, 0], [1, 3, 1], [0, 1, 2]] x = [1, 2, 3], with a duplicate entry split in two.
        let t = [
            (0, 0, 3.0),
            (0, 0, 1.0),
            (0, 1, 1.0),
            (1, 0, 1.0),
            (1, 1, 3.0),
            (1, 2, 1.0),
            (2, 1, 1.0),
            (2, 2, 2.0),
        ];
        (
            t.iter().map(|t| t.0).collect(),
            t.iter().map(|t| t.1).collect(),
            t.iter().map(|t| t.2).collect(),
            vec![1.0, 2.0, 3.0],
        )
    }

    const ALL: [Choice; 3] = [Choice::FaerDense, Choice::FaerSparse, Choice::NalgebraDense];

    #[test]
    fn every_backend_agrees_with_the_exact_solution() {
        // Cramer's rule.
        let det = 4.0 * (3.0 * 2.0 - 1.0) - 1.0 * (1.0 * 2.0 - 0.0);
        let x0 = (1.0 * 5.0 - 1.0 * (2.0 * 2.0 - 3.0)) / det;
        for choice in ALL {
            let (r, c, v, mut b) = system();
            let mut s = new_solver(choice);
            s.analyse(3, &r, &c).unwrap();
            s.factor(&v).unwrap();
            s.solve_in_place(&mut b).unwrap();
            assert!((b[0] - x0).abs() < 1e-14, "{choice:?}: {b:?}");
            assert!((4.0 * b[0] + b[1] - 1.0).abs() < 1e-14);
            assert!((b[0] + 3.0 * b[1] + b[2] - 2.0).abs() < 1e-14);
            assert!((b[1] + 2.0 * b[2] - 3.0).abs() < 1e-14);
        }
    }

    #[test]
    fn refactoring_new_values_reuses_the_analysis() {
        for choice in ALL {
            let (r, c, mut v, _) = system();
            let mut s = new_solver(choice);
            s.analyse(3, &r, &c).unwrap();
            for k in 0..3 {
                v[2] = 1.0 + k as f64;
                s.factor(&v).unwrap();
                let mut b = vec![1.0, 2.0, 3.0];
                s.solve_in_place(&mut b).unwrap();
                // Row 0 reads 4·x0 + v[2]·x1 = 1.
                assert!((4.0 * b[0] + v[2] * b[1] - 1.0).abs() < 1e-13, "{choice:?}");
            }
        }
    }

    #[test]
    fn singular_is_an_error_not_nan() {
        for choice in ALL {
            let (r, c) = (vec![0, 0, 1, 1], vec![0, 1, 0, 1]);
            let mut s = new_solver(choice);
            s.analyse(2, &r, &c).unwrap();
            let res = s.factor(&[1.0, 1.0, 1.0, 1.0]).and_then(|_| {
                let mut b = vec![1.0, 2.0];
                s.solve_in_place(&mut b)?;
                if b.iter().all(|v| v.is_finite()) {
                    Ok(())
                } else {
                    Err(LinearSolveError::NotFinite)
                }
            });
            assert!(res.is_err(), "{choice:?}");
        }
    }
}
