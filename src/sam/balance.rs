//! SAM balancing by least absolute adjustment, as a linear program.
//!
//! Cross-entropy and RAS are the classic balancing methods, but they cannot
//! handle negative cells or hard-fixed cells gracefully. Minimising the total
//! absolute change is a plain LP (solved here with the pure-Rust microlp
//! backend of good_lp), handles both, and changes as few cells as possible,
//! which keeps the adjustments easy to audit.
//!
//! For every adjustable cell `a_ij` the LP has `p_ij, n_ij ≥ 0` and the new
//! value `x_ij = a_ij + p_ij − n_ij`; it minimises `Σ w_ij (p_ij + n_ij)`
//! (`w_ij = 1`, or `1/|a_ij|` for least relative adjustment) subject to
//! "row total = column total" for every account. Adjustable cells are the
//! non-zero, off-diagonal cells that are not fixed: zero cells stay zero
//! (they encode structural absence of a flow), diagonal cells cancel out of
//! their own account's balance so changing them can never help.
//! Signs are kept: `x_ij ≥ 0` where `a_ij > 0` (as the bound `n_ij ≤ a_ij`),
//! `x_ij ≤ 0` where `a_ij < 0` (as `p_ij ≤ −a_ij`); as simple bounds these
//! cost no extra constraints and lose no optimum, since at an optimum at most
//! one of `p_ij, n_ij` is positive.

use std::panic::{catch_unwind, AssertUnwindSafe};

use good_lp::{
    microlp, variable, Expression, ProblemVariables, ResolutionError, Solution, SolverModel,
    Variable,
};

use crate::sam::{Sam, SamError};

/// Relative size below which an LP adjustment is treated as solver noise.
const NOISE_REL: f64 = 1e-9;
/// Largest relative gap accepted in the final result; anything above means
/// the solver lost precision and its answer is rejected.
const ACCEPT_REL: f64 = 1e-6;
/// Weight of the tie-breaking term in the absolute objective (see [`balance`]).
const TIE_BREAK: f64 = 1e-6;
/// Most decimal places tried when looking for the data's decimal grid.
const MAX_DECIMALS: i32 = 9;

/// What the balancing may change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BalanceOptions {
    /// Minimise `Σ |x_ij − a_ij| / |a_ij|` (least relative adjustment)
    /// instead of `Σ |x_ij − a_ij|`.
    pub relative: bool,
    /// Cells `(row, col)` that keep their value.
    pub fixed: Vec<(String, String)>,
    /// Accounts whose whole row and column keep their values.
    pub fixed_accounts: Vec<String>,
}

/// One cell changed by [`balance`].
#[derive(Debug, Clone, PartialEq)]
pub struct CellChange {
    /// Row account.
    pub row: String,
    /// Column account.
    pub col: String,
    /// Value before balancing.
    pub old: f64,
    /// Value after balancing.
    pub new: f64,
}

/// What [`balance`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceReport {
    /// Every changed cell, in row-major account order.
    pub changes: Vec<CellChange>,
    /// `Σ |new − old|` over all cells.
    pub total_abs_adjustment: f64,
    /// The minimised objective recomputed from the result: equal to
    /// `total_abs_adjustment`, or `Σ |new − old| / |old|` when
    /// [`BalanceOptions::relative`] is set.
    pub objective: f64,
    /// Largest `|row total − column total|` left in the result; 0 when the
    /// result is exactly balanced in floating point.
    pub max_remaining_gap: f64,
}

/// An LP column pair for one adjustable cell.
struct FreeCell {
    /// Row-major cell index.
    cell: usize,
    up: Variable,
    down: Variable,
}

/// Balances `sam` with the least total (or relative) absolute adjustment.
///
/// Returns the balanced SAM and a report of the changes. Zero cells stay
/// zero, fixed cells and the cells of fixed accounts keep their value, and
/// every cell keeps its sign (it may become zero). Fails with
/// [`SamError::UnknownAccount`] for an unknown name in `options`,
/// [`SamError::Infeasible`] when no such adjustment exists, and
/// [`SamError::Solver`] if the LP solver fails.
///
/// Tiny solver noise is removed: adjustments below `1e-9·max(1, |a|)` become
/// exactly zero, and when all data lie on a decimal grid (e.g. whole numbers)
/// new values are snapped to it, because optimal LP vertices of this problem
/// lie on that grid. Remaining floating-point gaps are then pushed into
/// changed cells where that makes the result exactly balanced.
///
/// Least absolute adjustment often has many optimal solutions (any path of
/// cells between two unbalanced accounts costs the same), and a bare LP
/// solver then happily zeroes small cells. To prefer changing large cells,
/// the absolute objective gets a tie-breaking term: each unit of change costs
/// `1 + 1e-6 · m/|a_ij|` (`m` = smallest adjustable `|a|`). This never moves
/// the total absolute adjustment more than a relative 1e-6 above the minimum,
/// and not at all when the data lie on a decimal grid of step `q` and the
/// minimum is below `10⁶·q` (vertex totals then differ by at least `q`), e.g.
/// whole numbers needing less than a million of adjustment. Results are
/// deterministic for a given input.
pub fn balance(sam: &Sam, options: &BalanceOptions) -> Result<(Sam, BalanceReport), SamError> {
    let n = sam.n_accounts();
    let file = sam.origin().to_string();
    let old = sam.raw_values();

    let mut fixed = vec![false; n * n];
    for (row, col) in &options.fixed {
        let context = format!("fixed cell ({row}, {col})");
        let i = sam.require(row, &context)?;
        let j = sam.require(col, &context)?;
        fixed[i * n + j] = true;
    }
    for account in &options.fixed_accounts {
        let k = sam.require(account, "fixed accounts")?;
        for t in 0..n {
            fixed[k * n + t] = true;
            fixed[t * n + k] = true;
        }
    }

    let gaps: Vec<f64> = (0..n)
        .map(|k| sam.row_total(k) - sam.col_total(k))
        .collect();
    let adjustable = |c: usize| old[c] != 0.0 && !fixed[c] && c / n != c % n;

    // An account with a real gap and nothing adjustable in its row or column
    // makes the LP infeasible; say which one instead of a bare "infeasible".
    let stuck: Vec<String> = (0..n)
        .filter(|&k| gap_is_real(gaps[k], sam.row_total(k)))
        .filter(|&k| !(0..n).any(|t| adjustable(k * n + t) || adjustable(t * n + k)))
        .map(|k| format!("{} (gap {:+})", sam.accounts()[k], gaps[k]))
        .collect();
    if !stuck.is_empty() {
        return Err(SamError::Infeasible {
            file,
            message: format!(
                "no adjustable cell (non-zero, off-diagonal, not fixed) in the row or column \
                 of unbalanced account(s): {}",
                stuck.join(", ")
            ),
        });
    }

    let mut new = old.to_vec();
    let cells: Vec<usize> = (0..n * n).filter(|&c| adjustable(c)).collect();
    let needs_lp = gaps.iter().any(|&g| g != 0.0) && !cells.is_empty();
    if needs_lp {
        let deltas = solve_lp(sam, &cells, &gaps, options.relative)?;
        let grid = decimal_grid(old);
        for (&c, &delta) in cells.iter().zip(&deltas) {
            new[c] = clean_value(old[c], delta, grid);
        }
        make_exact(&mut new, old, n);
    }

    let balanced = Sam::from_parts(file.clone(), sam.accounts().to_vec(), new);
    let max_remaining_gap = balanced.max_abs_gap();
    let scale = (0..n)
        .map(|k| balanced.row_total(k).abs())
        .fold(1.0, f64::max);
    if max_remaining_gap > ACCEPT_REL * scale {
        return Err(SamError::Solver {
            file,
            message: format!(
                "the LP solution leaves a gap of {max_remaining_gap} (largest account total \
                 {scale}); the solver lost precision"
            ),
        });
    }

    let mut changes = Vec::new();
    let mut total_abs_adjustment = 0.0;
    let mut objective = 0.0;
    for (c, (&before, &after)) in old.iter().zip(balanced.raw_values()).enumerate() {
        if before != after {
            let change = (after - before).abs();
            total_abs_adjustment += change;
            objective += if options.relative {
                change / before.abs()
            } else {
                change
            };
            changes.push(CellChange {
                row: sam.accounts()[c / n].clone(),
                col: sam.accounts()[c % n].clone(),
                old: before,
                new: after,
            });
        }
    }
    let report = BalanceReport {
        changes,
        total_abs_adjustment,
        objective,
        max_remaining_gap,
    };
    Ok((balanced, report))
}

/// Whether a gap is more than floating-point noise relative to the account size.
fn gap_is_real(gap: f64, row_total: f64) -> bool {
    gap.abs() > NOISE_REL * row_total.abs().max(1.0)
}

/// Solves the balancing LP; returns the adjustment `p − n` of each cell in
/// `cells` (row-major indices of adjustable cells).
fn solve_lp(
    sam: &Sam,
    cells: &[usize],
    gaps: &[f64],
    relative: bool,
) -> Result<Vec<f64>, SamError> {
    let n = sam.n_accounts();
    let old = sam.raw_values();
    let file = sam.origin();

    let smallest = cells
        .iter()
        .map(|&c| old[c].abs())
        .fold(f64::INFINITY, f64::min);
    let mut vars = ProblemVariables::new();
    let mut objective = Expression::with_capacity(2 * cells.len());
    let mut free = Vec::with_capacity(cells.len());
    for &cell in cells {
        let a = old[cell];
        // Bounding the decrease (positive cell) or the increase (negative
        // cell) by |a| keeps the sign.
        let (up, down) = if a > 0.0 {
            (
                vars.add(variable().min(0.0)),
                vars.add(variable().min(0.0).max(a)),
            )
        } else {
            (
                vars.add(variable().min(0.0).max(-a)),
                vars.add(variable().min(0.0)),
            )
        };
        let weight = if relative {
            1.0 / a.abs()
        } else {
            1.0 + TIE_BREAK * smallest / a.abs()
        };
        objective.add_mul(weight, up);
        objective.add_mul(weight, down);
        free.push(FreeCell { cell, up, down });
    }

    // Per account: gap + Σ_row (p − n) − Σ_col (p − n) = 0.
    let mut balance_rows: Vec<Expression> = (0..n).map(|_| Expression::default()).collect();
    let mut has_terms = vec![false; n];
    for fc in &free {
        let (i, j) = (fc.cell / n, fc.cell % n);
        balance_rows[i].add_mul(1.0, fc.up);
        balance_rows[i].add_mul(-1.0, fc.down);
        balance_rows[j].add_mul(-1.0, fc.up);
        balance_rows[j].add_mul(1.0, fc.down);
        has_terms[i] = true;
        has_terms[j] = true;
    }

    let mut model = vars.minimise(objective).using(microlp);
    for (k, mut row) in balance_rows.into_iter().enumerate() {
        // Accounts without adjustable cells only have noise-level gaps here
        // (real ones were rejected earlier); an empty "gap = 0" row would make
        // the LP spuriously infeasible.
        if has_terms[k] {
            row += gaps[k];
            model.add_constraint(row.eq(0.0));
        }
    }

    // microlp documents that it may panic on hard problems; turn that into an
    // error instead of taking the caller down.
    let outcome = catch_unwind(AssertUnwindSafe(move || {
        model.solve().map(|solution| {
            free.iter()
                .map(|fc| solution.value(fc.up) - solution.value(fc.down))
                .collect::<Vec<f64>>()
        })
    }));
    match outcome {
        Ok(Ok(deltas)) => Ok(deltas),
        Ok(Err(ResolutionError::Infeasible)) => {
            let unbalanced: Vec<String> = sam
                .imbalances(NOISE_REL)
                .iter()
                .map(|im| format!("{} (gap {:+})", im.account, im.gap))
                .collect();
            Err(SamError::Infeasible {
                file: file.to_string(),
                message: format!(
                    "no adjustment of the non-zero, non-fixed cells that keeps zero cells zero \
                     and every cell's sign makes all row totals equal column totals; \
                     unbalanced accounts: {}",
                    unbalanced.join(", ")
                ),
            })
        }
        Ok(Err(e)) => Err(SamError::Solver {
            file: file.to_string(),
            message: e.to_string(),
        }),
        Err(_) => Err(SamError::Solver {
            file: file.to_string(),
            message: "the microlp solver panicked".to_string(),
        }),
    }
}

/// Smallest number of decimals `d ≤ MAX_DECIMALS` such that every value is a
/// whole multiple of `10^-d` (within rounding), or `None`.
fn decimal_grid(values: &[f64]) -> Option<i32> {
    // Beyond 2^53 scaled values are no longer exact integers.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    (0..=MAX_DECIMALS).find(|&d| {
        let scale = 10f64.powi(d);
        values.iter().all(|&v| {
            let t = v * scale;
            t.abs() < EXACT && (t - t.round()).abs() <= NOISE_REL * t.abs().max(1.0)
        })
    })
}

/// New value for a cell of value `a` adjusted by the LP by `delta`: noise is
/// dropped, values are snapped to the data's decimal grid, and the sign kept.
fn clean_value(a: f64, delta: f64, grid: Option<i32>) -> f64 {
    if delta.abs() < NOISE_REL * a.abs().max(1.0) {
        return a;
    }
    let mut x = a + delta;
    if let Some(d) = grid {
        let scale = 10f64.powi(d);
        let snapped = (x * scale).round() / scale;
        // The optimal vertex lies on the grid, so the LP value is within
        // solver noise of a grid point; never move by more than that.
        let tol = (1e-6 * a.abs().max(1.0)).min(1e-3 / scale);
        if (x - snapped).abs() <= tol {
            x = snapped;
        }
    }
    // The bounds guarantee the sign up to solver noise; remove the noise.
    if (a > 0.0 && x < 0.0) || (a < 0.0 && x > 0.0) {
        x = 0.0;
    }
    if x == 0.0 {
        0.0
    } else {
        x
    }
}

/// Removes floating-point gaps left after cleaning by nudging changed cells.
///
/// The changed cells form a graph on the accounts; along a spanning forest,
/// each non-root account's gap is pushed into the cell linking it to its
/// parent, leaves first, so the last residue lands on each tree's root
/// (where it is the sum of the tree's gaps, zero in exact arithmetic).
/// Only tiny nudges are made and the result is kept only if it is no worse.
fn make_exact(values: &mut [f64], old: &[f64], n: usize) {
    let gap = |v: &[f64], k: usize| -> f64 {
        let row: f64 = v[k * n..(k + 1) * n].iter().sum();
        let col: f64 = (0..n).map(|i| v[i * n + k]).sum();
        row - col
    };
    let max_gap = |v: &[f64]| (0..n).map(|k| gap(v, k).abs()).fold(0.0, f64::max);
    let before = max_gap(values);
    if before == 0.0 {
        return;
    }

    // Cells the LP changed and left non-zero (zeroed cells stay exactly zero).
    let mut adjacent: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for c in 0..n * n {
        let (i, j) = (c / n, c % n);
        if i != j && values[c] != old[c] && values[c] != 0.0 {
            adjacent[i].push((j, c));
            adjacent[j].push((i, c));
        }
    }

    let mut trial = values.to_vec();
    let mut seen = vec![false; n];
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        // BFS order with the cell linking each node to its parent.
        let mut order: Vec<(usize, usize)> = Vec::new();
        let mut head = 0;
        let mut frontier = vec![root];
        while head < frontier.len() {
            let k = frontier[head];
            head += 1;
            for &(other, cell) in &adjacent[k] {
                if !seen[other] {
                    seen[other] = true;
                    frontier.push(other);
                    order.push((other, cell));
                }
            }
        }
        for &(k, cell) in order.iter().rev() {
            // A few passes: the corrected sum can itself round by an ulp.
            for _ in 0..4 {
                let g = gap(&trial, k);
                if g == 0.0 {
                    break;
                }
                let current = trial[cell];
                // Lowering a cell in k's row, or raising one in k's column,
                // lowers k's gap.
                let next = if cell / n == k {
                    current - g
                } else {
                    current + g
                };
                let tiny = (next - current).abs() <= ACCEPT_REL * current.abs().max(1.0);
                let same_sign = next.signum() == old[cell].signum() && next != 0.0;
                if !(tiny && same_sign) {
                    break;
                }
                trial[cell] = next;
            }
        }
    }
    if max_gap(&trial) <= before {
        values.copy_from_slice(&trial);
    }
}
