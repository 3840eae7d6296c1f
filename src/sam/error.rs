//! Error type for SAM reading, checking, balancing and writing.

use std::fmt::Write as _;

use crate::sam::Imbalance;

/// Everything that can go wrong with a SAM. Every variant names the file (or
/// origin name) so messages stand on their own in logs.
#[derive(Debug, thiserror::Error)]
pub enum SamError {
    /// Reading or writing a file failed.
    #[error("{file}: I/O error: {source}")]
    Io {
        /// File path.
        file: String,
        /// Underlying error.
        source: std::io::Error,
    },

    /// The CSV text is malformed; `line` is 1-based.
    #[error("{file}:{line}: {message}")]
    Parse {
        /// File path or origin name.
        file: String,
        /// 1-based line number of the offending record.
        line: u64,
        /// What is wrong, naming the row/column account or cell.
        message: String,
    },

    /// Some accounts' row totals differ from their column totals.
    #[error("{}", unbalanced_message(file, imbalances))]
    Unbalanced {
        /// File path or origin name.
        file: String,
        /// Failing accounts, largest `|gap|` first.
        imbalances: Vec<Imbalance>,
    },

    /// No adjustment allowed by the balancing rules can balance the SAM.
    #[error("{file}: cannot balance the SAM: {message}")]
    Infeasible {
        /// File path or origin name.
        file: String,
        /// Why, naming the accounts concerned.
        message: String,
    },

    /// An account name given by the caller does not exist in the SAM.
    #[error("{file}: unknown account '{account}' in {context}")]
    UnknownAccount {
        /// File path or origin name.
        file: String,
        /// The unknown name.
        account: String,
        /// Where the name was used, e.g. "fixed cell (ROE, XYZ)".
        context: String,
    },

    /// A SAM built in code (not parsed) violates the SAM invariants.
    #[error("{file}: invalid SAM: {message}")]
    Invalid {
        /// Origin name.
        file: String,
        /// What is wrong.
        message: String,
    },

    /// The LP solver failed for a reason other than infeasibility, or its
    /// answer did not balance the SAM.
    #[error("{file}: LP solver failed while balancing: {message}")]
    Solver {
        /// File path or origin name.
        file: String,
        /// Solver message.
        message: String,
    },
}

/// One line per failing account so large SAMs stay readable.
fn unbalanced_message(file: &str, imbalances: &[Imbalance]) -> String {
    let mut s = format!(
        "{file}: SAM is not balanced: {} account(s) with row total != column total \
         (gap = row - column, largest first):",
        imbalances.len()
    );
    for im in imbalances {
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "\n  {}: row total {}, column total {}, gap {:+}",
            im.account, im.row_total, im.col_total, im.gap
        );
    }
    s
}
