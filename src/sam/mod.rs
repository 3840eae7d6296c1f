//! Social accounting matrices (SAMs): reading, checking, balancing and writing.
//!
//! A SAM is the square table of flows that calibrates a CGE model: row `i`
//! lists what account `i` receives, column `j` what account `j` pays, so every
//! account's row total must equal its column total. Raw SAMs assembled from
//! several statistical sources rarely balance, and a model calibrated on an
//! unbalanced SAM cannot reproduce its benchmark, so this module
//!
//! * reads a SAM from CSV with strict validation and precise error locations
//!   ([`Sam::read`], [`Sam::from_str`]),
//! * reports imbalances ([`Sam::imbalances`], [`Sam::check_balanced`]),
//! * balances it with the least total (or relative) absolute adjustment,
//!   solved as a linear program ([`balance`]),
//! * writes it back atomically ([`Sam::write_csv_atomic`]).
//!
//! CSV layout (rows = receipts, columns = payments):
//!
//! ```text
//! # comment lines and blank lines are ignored
//! account,A,B,C
//! A,0,10,5
//! B,12,0,3
//! C,3,5,0
//! ```
//!
//! The header starts with `account` (any case), then names every account
//! once; rows follow in header order; every cell is a finite number
//! (negative values allowed, empty cells rejected). Fields are trimmed, a
//! UTF-8 BOM is ignored, and a line starting with `#` is a comment, so an
//! account name starting with `#` must be quoted at the start of its row
//! (the writer does this).

mod balance;
mod error;
mod io;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use crate::sam::balance::{balance, BalanceOptions, BalanceReport, CellChange};
pub use crate::sam::error::SamError;

/// A square social accounting matrix with named accounts.
///
/// Values are stored row-major; `value(i, j)` is the payment from account `j`
/// (column) to account `i` (row). Every value is finite.
#[derive(Debug, Clone)]
pub struct Sam {
    /// Where the SAM came from (file path or caller-given name), used in errors.
    origin: String,
    accounts: Vec<String>,
    /// Row-major `n × n` values.
    values: Vec<f64>,
}

/// Two SAMs are equal when they have the same accounts in the same order and
/// bit-for-bit equal values; the origin name is ignored.
impl PartialEq for Sam {
    fn eq(&self, other: &Self) -> bool {
        self.accounts == other.accounts && self.values == other.values
    }
}

/// One account whose row total differs from its column total.
#[derive(Debug, Clone, PartialEq)]
pub struct Imbalance {
    /// Account name.
    pub account: String,
    /// Sum of the account's row (receipts).
    pub row_total: f64,
    /// Sum of the account's column (payments).
    pub col_total: f64,
    /// `row_total - col_total`.
    pub gap: f64,
}

impl Sam {
    /// Builds a SAM from account names and rows of values.
    ///
    /// `origin` names the SAM in error messages. Fails with
    /// [`SamError::Invalid`] unless there is at least one account, names are
    /// non-empty and unique, there is one row per account with one value per
    /// account, and every value is finite.
    pub fn new(
        origin: impl Into<String>,
        accounts: Vec<String>,
        rows: Vec<Vec<f64>>,
    ) -> Result<Sam, SamError> {
        let origin = origin.into();
        let invalid = |message: String| SamError::Invalid {
            file: origin.clone(),
            message,
        };
        let n = accounts.len();
        if n == 0 {
            return Err(invalid("a SAM needs at least one account".into()));
        }
        for (k, name) in accounts.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(invalid(format!("account {} has an empty name", k + 1)));
            }
            // The CSV reader trims fields, so such a name would not survive a
            // write/read round trip.
            if name.trim() != name {
                return Err(invalid(format!(
                    "account name '{name}' has leading or trailing whitespace"
                )));
            }
            if let Some(first) = accounts[..k].iter().position(|a| a == name) {
                return Err(invalid(format!(
                    "duplicate account '{name}' (positions {} and {})",
                    first + 1,
                    k + 1
                )));
            }
        }
        if rows.len() != n {
            return Err(invalid(format!(
                "{} rows given for {n} accounts",
                rows.len()
            )));
        }
        let mut values = Vec::with_capacity(n * n);
        for (i, row) in rows.iter().enumerate() {
            if row.len() != n {
                return Err(invalid(format!(
                    "row '{}' has {} values, expected {n}",
                    accounts[i],
                    row.len()
                )));
            }
            for (j, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(invalid(format!(
                        "cell ({}, {}) = {v} is not a finite number",
                        accounts[i], accounts[j]
                    )));
                }
                values.push(v);
            }
        }
        Ok(Sam {
            origin,
            accounts,
            values,
        })
    }

    /// Reads a SAM from a CSV file (see the module docs for the layout).
    ///
    /// Errors name the file, the 1-based line and the offending account or
    /// cell. Never panics on malformed input.
    pub fn read(path: &Path) -> Result<Sam, SamError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| SamError::Io {
            file: origin.clone(),
            source,
        })?;
        crate::sam::io::parse(&bytes, &origin)
    }

    /// Parses a SAM from the bytes of a CSV file (checked as UTF-8 with the line of a bad
    /// byte); `origin` names it in error messages.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Sam, SamError> {
        crate::sam::io::parse(bytes, origin)
    }

    /// Parses a SAM from CSV text; `origin` names it in error messages.
    pub fn from_str(text: &str, origin: &str) -> Result<Sam, SamError> {
        crate::sam::io::parse(text.as_bytes(), origin)
    }

    /// Writes the SAM as CSV, atomically: the data goes to a temporary file in
    /// the target's directory which is then renamed over `path`, so readers
    /// never see a half-written file.
    ///
    /// Numbers use Rust's shortest round-trip formatting, so reading the file
    /// back gives bit-identical values.
    pub fn write_csv_atomic(&self, path: &Path) -> Result<(), SamError> {
        crate::sam::io::write_atomic(self, path)
    }

    /// The name used for this SAM in error messages (file path or given origin).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Account names, in row (= column) order.
    pub fn accounts(&self) -> &[String] {
        &self.accounts
    }

    /// Number of accounts (the SAM is `n × n`).
    pub fn n_accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Position of an account, if it exists.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a == name)
    }

    /// Value of cell (`row`, `col`), or `None` if either account is unknown.
    pub fn get(&self, row: &str, col: &str) -> Option<f64> {
        Some(self.value(self.index_of(row)?, self.index_of(col)?))
    }

    /// Value of cell (`i`, `j`) by position.
    ///
    /// # Panics
    /// If `i` or `j` is not below [`Sam::n_accounts`].
    pub fn value(&self, i: usize, j: usize) -> f64 {
        let n = self.n_accounts();
        assert!(
            i < n && j < n,
            "SAM cell ({i}, {j}) out of range for {n} accounts"
        );
        self.values[i * n + j]
    }

    /// Sets cell (`row`, `col`). Fails on an unknown account or a non-finite
    /// value, leaving the SAM unchanged.
    pub fn set(&mut self, row: &str, col: &str, value: f64) -> Result<(), SamError> {
        let context = format!("cell ({row}, {col})");
        let i = self.require(row, &context)?;
        let j = self.require(col, &context)?;
        if !value.is_finite() {
            return Err(SamError::Invalid {
                file: self.origin.clone(),
                message: format!("{context} = {value} is not a finite number"),
            });
        }
        let n = self.n_accounts();
        self.values[i * n + j] = value;
        Ok(())
    }

    /// Sum of row `i` (what account `i` receives), summed left to right.
    ///
    /// # Panics
    /// If `i` is not below [`Sam::n_accounts`].
    pub fn row_total(&self, i: usize) -> f64 {
        let n = self.n_accounts();
        self.values[i * n..(i + 1) * n].iter().sum()
    }

    /// Sum of column `j` (what account `j` pays), summed top to bottom.
    ///
    /// # Panics
    /// If `j` is not below [`Sam::n_accounts`].
    pub fn col_total(&self, j: usize) -> f64 {
        let n = self.n_accounts();
        assert!(j < n, "SAM column {j} out of range for {n} accounts");
        (0..n).map(|i| self.values[i * n + j]).sum()
    }

    /// Accounts whose row and column totals differ by more than
    /// `tol · max(1, |row_total|)`, largest `|gap|` first (ties keep account
    /// order). `tol = 0` reports every inexact account.
    pub fn imbalances(&self, tol: f64) -> Vec<Imbalance> {
        // f64::max ignores NaN, so a NaN or negative tolerance means "exact".
        let tol = tol.max(0.0);
        let mut out: Vec<Imbalance> = (0..self.n_accounts())
            .filter_map(|k| {
                let row_total = self.row_total(k);
                let col_total = self.col_total(k);
                let gap = row_total - col_total;
                (gap.abs() > tol * row_total.abs().max(1.0)).then(|| Imbalance {
                    account: self.accounts[k].clone(),
                    row_total,
                    col_total,
                    gap,
                })
            })
            .collect();
        // Stable sort: equal gaps stay in account order.
        out.sort_by(|a, b| b.gap.abs().total_cmp(&a.gap.abs()));
        out
    }

    /// `Ok(())` if no account fails [`Sam::imbalances`] at `tol`, otherwise
    /// [`SamError::Unbalanced`] listing every failing account.
    pub fn check_balanced(&self, tol: f64) -> Result<(), SamError> {
        let imbalances = self.imbalances(tol);
        if imbalances.is_empty() {
            Ok(())
        } else {
            Err(SamError::Unbalanced {
                file: self.origin.clone(),
                imbalances,
            })
        }
    }

    /// Largest `|row_total - col_total|` over all accounts (0 when exactly
    /// balanced).
    pub fn max_abs_gap(&self) -> f64 {
        (0..self.n_accounts())
            .map(|k| (self.row_total(k) - self.col_total(k)).abs())
            .fold(0.0, f64::max)
    }

    /// Index of `name`, or [`SamError::UnknownAccount`] mentioning `context`.
    pub(crate) fn require(&self, name: &str, context: &str) -> Result<usize, SamError> {
        self.index_of(name).ok_or_else(|| SamError::UnknownAccount {
            file: self.origin.clone(),
            account: name.to_string(),
            context: context.to_string(),
        })
    }

    /// Builds a SAM from already validated parts (square, finite, unique names).
    pub(crate) fn from_parts(origin: String, accounts: Vec<String>, values: Vec<f64>) -> Sam {
        debug_assert_eq!(values.len(), accounts.len() * accounts.len());
        Sam {
            origin,
            accounts,
            values,
        }
    }

    /// Row-major values.
    pub(crate) fn raw_values(&self) -> &[f64] {
        &self.values
    }
}
