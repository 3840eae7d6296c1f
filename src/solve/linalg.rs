//! Linear algebra behind one small interface: factor a square matrix given as triplets, solve.
//!
//! Dense LU (nalgebra) for small systems, sparse LU (faer) for large ones; the sparse backend
//! keeps the symbolic analysis while the pattern stays the same (it does within a solve: the
//! Jacobian's pattern depends only on the model's structure).

use faer::linalg::solvers::Solve;
use faer::sparse::linalg::solvers::{Lu, SymbolicLu};
use faer::sparse::{Pair, SparseColMat, SymbolicSparseColMat};

/// Why a linear solve failed.
#[derive(Debug, Clone, PartialEq)]
pub enum LinearSolveError {
    Singular,
    NotFinite,
}

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Dense up to `DENSE_LIMIT` unknowns or for dense patterns, sparse otherwise.
    Auto,
    Dense,
    Sparse,
}

/// Unknowns up to which `Backend::Auto` factors densely.
pub const DENSE_LIMIT: usize = 150;
/// Above `DENSE_LIMIT`, `Backend::Auto` still factors densely while there are at least
/// `DENSE_FILL · n²` Jacobian entries, up to this many unknowns.
pub const DENSE_PATTERN_LIMIT: usize = 3000;
pub const DENSE_FILL: f64 = 0.1;

/// A linear solver with a cached symbolic factorisation.
pub struct LinearSolver {
    backend: Backend,
    pattern: Vec<(usize, usize)>,
    symbolic: Option<(
        SymbolicSparseColMat<usize>,
        faer::sparse::Argsort<usize>,
        SymbolicLu<usize>,
    )>,
    /// Number of symbolic analyses done (a reuse check for tests and benchmarks).
    pub analyses: usize,
}

impl LinearSolver {
    pub fn new(backend: Backend) -> Self {
        // Sequential factorisation: results must not depend on thread scheduling, and scenario
        // sweeps are already parallel across scenarios.
        faer::set_global_parallelism(faer::Par::Seq);
        LinearSolver {
            backend,
            pattern: Vec::new(),
            symbolic: None,
            analyses: 0,
        }
    }

    /// Solves `A x = b` for `A` given by triplets (duplicates add up); `b` is overwritten by `x`.
    pub fn solve(
        &mut self,
        n: usize,
        triplets: &[(usize, usize, f64)],
        b: &mut [f64],
    ) -> Result<(), LinearSolveError> {
        let dense = match self.backend {
            Backend::Dense => true,
            Backend::Sparse => false,
            // A dense pattern (CES demand systems make price blocks dense) factors faster
            // densely well beyond DENSE_LIMIT.
            Backend::Auto => {
                n <= DENSE_LIMIT
                    || (n <= DENSE_PATTERN_LIMIT
                        && triplets.len() as f64 >= DENSE_FILL * (n * n) as f64)
            }
        };
        if dense {
            self.solve_dense(n, triplets, b)
        } else {
            self.solve_sparse(n, triplets, b)
        }?;
        if b.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(LinearSolveError::NotFinite)
        }
    }

    fn solve_dense(
        &mut self,
        n: usize,
        triplets: &[(usize, usize, f64)],
        b: &mut [f64],
    ) -> Result<(), LinearSolveError> {
        let mut a = nalgebra::DMatrix::<f64>::zeros(n, n);
        for &(r, c, v) in triplets {
            a[(r, c)] += v;
        }
        let lu = a.lu();
        let rhs = nalgebra::DVector::from_column_slice(b);
        let x = lu.solve(&rhs).ok_or(LinearSolveError::Singular)?;
        b.copy_from_slice(x.as_slice());
        Ok(())
    }

    fn solve_sparse(
        &mut self,
        n: usize,
        triplets: &[(usize, usize, f64)],
        b: &mut [f64],
    ) -> Result<(), LinearSolveError> {
        let same = self.symbolic.is_some()
            && self.pattern.len() == triplets.len()
            && self
                .pattern
                .iter()
                .zip(triplets)
                .all(|(p, t)| p.0 == t.0 && p.1 == t.1);
        if !same {
            let pairs: Vec<Pair<usize, usize>> =
                triplets.iter().map(|t| Pair::new(t.0, t.1)).collect();
            let (sym, argsort) = SymbolicSparseColMat::try_new_from_indices(n, n, &pairs)
                .map_err(|_| LinearSolveError::Singular)?;
            let lu = SymbolicLu::try_new(sym.as_ref()).map_err(|_| LinearSolveError::Singular)?;
            self.symbolic = Some((sym, argsort, lu));
            self.pattern = triplets.iter().map(|t| (t.0, t.1)).collect();
            self.analyses += 1;
        }
        let (sym, argsort, slu) = self.symbolic.as_ref().expect("symbolic analysis present");
        let values: Vec<f64> = triplets.iter().map(|t| t.2).collect();
        let mat = SparseColMat::new_from_argsort(sym.clone(), argsort, &values)
            .map_err(|_| LinearSolveError::Singular)?;
        let lu = Lu::try_new_with_symbolic(slu.clone(), mat.as_ref())
            .map_err(|_| LinearSolveError::Singular)?;
        let mut rhs = faer::Mat::<f64>::from_fn(n, 1, |i, _| b[i]);
        lu.solve_in_place(rhs.as_mut());
        for (i, v) in b.iter_mut().enumerate() {
            *v = rhs[(i, 0)];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> (Vec<(usize, usize, f64)>, Vec<f64>) {
        // [[4, 1, 0], [1, 3, 1], [0, 1, 2]] x = [1, 2, 3], with a duplicate entry split in two.
        let t = vec![
            (0, 0, 3.0),
            (0, 0, 1.0),
            (0, 1, 1.0),
            (1, 0, 1.0),
            (1, 1, 3.0),
            (1, 2, 1.0),
            (2, 1, 1.0),
            (2, 2, 2.0),
        ];
        (t, vec![1.0, 2.0, 3.0])
    }

    #[test]
    fn dense_and_sparse_agree_with_the_exact_solution() {
        // Exact solution by hand: x = [3/18, 2/6... ] computed from Cramer's rule.
        let det = 4.0 * (3.0 * 2.0 - 1.0) - 1.0 * (1.0 * 2.0 - 0.0);
        let x0 = (1.0 * 5.0 - 1.0 * (2.0 * 2.0 - 3.0)) / det;
        for backend in [Backend::Dense, Backend::Sparse] {
            let (t, mut b) = system();
            let mut s = LinearSolver::new(backend);
            s.solve(3, &t, &mut b).unwrap();
            assert!((b[0] - x0).abs() < 1e-14, "{backend:?}: {b:?}");
            assert!((4.0 * b[0] + b[1] - 1.0).abs() < 1e-14);
            assert!((b[0] + 3.0 * b[1] + b[2] - 2.0).abs() < 1e-14);
            assert!((b[1] + 2.0 * b[2] - 3.0).abs() < 1e-14);
        }
    }

    #[test]
    fn sparse_reuses_the_symbolic_analysis() {
        let mut s = LinearSolver::new(Backend::Sparse);
        for k in 0..3 {
            let (mut t, mut b) = system();
            t[1].2 += k as f64;
            s.solve(3, &t, &mut b).unwrap();
        }
        assert_eq!(s.analyses, 1);
    }

    #[test]
    fn singular_is_an_error_not_nan() {
        for backend in [Backend::Dense, Backend::Sparse] {
            let t = vec![(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0), (1, 1, 1.0)];
            let mut b = vec![1.0, 2.0];
            let r = LinearSolver::new(backend).solve(2, &t, &mut b);
            assert!(r.is_err(), "{backend:?} gave {b:?}");
        }
    }
}
