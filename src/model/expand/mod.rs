//! Indexed models: `[sets]`, `[tables]` and blocks declared over sets (`[sectors."Y[j]"]`,
//! netputs `over = "i"`, `sum(i, …)`) written out as the plain model of the contract.
//!
//! Expansion has two parts. [`Index::read`] reads the sets and the tables (CSV files, inline
//! tables) with their located diagnostics, before anything else. Validation then walks the
//! file's blocks and entries once, element by element of their sets, and builds the `Model`
//! straight from the templates ([`template`]): there is never an expanded copy of the file
//! (an N = 2000 model has four million netputs; its expanded TOML would be 250 MB). A template
//! (an expression or a name such as `P[i]`) is compiled once; an element instantiates it by
//! arithmetic on the positions of its labels: a table entry becomes its number, an element name
//! is formed only when it is not found in a cache by position, sums are unrolled as balanced
//! trees and constant parts folded. Entries `over` sets whose quantity is a constant zero are not
//! written (they could never become positive), so a model takes time and memory in proportion
//! to its data's non-zeros. Every message names the template's line, the element being expanded
//! (`expanding j = s3`) and the CSV file:row:column when the data is at fault.
//!
//! Sets are ordered as declared: the position of an element (`ord(i)`, 1-based) and the size
//! of a set (`card(i)`) may stand in expressions of an indexed model.

mod data;
pub(crate) mod template;

use std::collections::HashMap;

use indexmap::IndexMap;

use super::file::ModelFile;
use super::load::Source;
use super::Diagnostic;

/// True when a file uses the indexed extension and must be expanded.
pub fn is_indexed(file: &ModelFile) -> bool {
    !file.sets.is_empty() || !file.tables.is_empty()
}

/// A label of a set: letters, digits and `_`.
pub(crate) fn valid_label(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The labels of a set, in declared order, with their positions.
#[derive(Debug)]
pub(crate) struct SetData {
    /// Position in [`Index::sets`] (an alias shares its set's data).
    pub id: usize,
    pub name: String,
    pub labels: Vec<String>,
    pub position: HashMap<String, u32>,
}

impl SetData {
    fn new(id: usize, name: &str, labels: Vec<String>) -> SetData {
        let position = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i as u32))
            .collect();
        SetData {
            id,
            name: name.to_string(),
            labels,
            position,
        }
    }
    pub fn len(&self) -> usize {
        self.labels.len()
    }
}

/// A table's numbers: dense in the product of its sets' sizes (missing entries 0), or keyed by
/// label positions when that product is too large to hold.
#[derive(Debug)]
pub(crate) enum Values {
    /// Every entry, with which of them a file or inline table has set.
    Dense {
        values: Vec<f64>,
        set: Vec<bool>,
    },
    Sparse(HashMap<Vec<u32>, f64>),
}

const MAX_DENSE: usize = 100_000_000;

/// A table of numbers over sets (`[tables]`).
#[derive(Debug)]
pub(crate) struct Table {
    /// Its sets, by id in [`Index::sets`].
    pub dims: Vec<usize>,
    /// The size of each set.
    pub sizes: Vec<usize>,
    pub values: Values,
    /// Its entries are parameters (`NAME[label,...]`) rather than data.
    pub parameters: bool,
}

impl Table {
    fn new(dims: Vec<&SetData>, parameters: bool) -> Table {
        let sizes: Vec<usize> = dims.iter().map(|d| d.len()).collect();
        let size = sizes.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let values = match size {
            Some(n) if n <= MAX_DENSE => Values::Dense {
                values: vec![0.0; n],
                set: vec![false; n],
            },
            _ => Values::Sparse(HashMap::new()),
        };
        Table {
            dims: dims.iter().map(|d| d.id).collect(),
            sizes,
            values,
            parameters,
        }
    }
    fn offset(&self, at: &[u32]) -> usize {
        at.iter()
            .zip(&self.sizes)
            .fold(0, |o, (&p, &n)| o * n + p as usize)
    }
    /// The entry at label positions `at` (0 when missing).
    pub fn get(&self, at: &[u32]) -> f64 {
        match &self.values {
            Values::Dense { values, .. } => values[self.offset(at)],
            Values::Sparse(m) => m.get(at).copied().unwrap_or(0.0),
        }
    }
    /// Sets an entry; false when it was set before (a duplicate row).
    fn set(&mut self, at: &[u32], value: f64) -> bool {
        let o = self.offset(at);
        match &mut self.values {
            Values::Dense { values, set } => {
                values[o] = value;
                !std::mem::replace(&mut set[o], true)
            }
            Values::Sparse(m) => m.insert(at.to_vec(), value).is_none(),
        }
    }
    /// Number of entries (the product of its sets' sizes).
    pub fn len(&self) -> usize {
        self.sizes.iter().product()
    }
}

/// The sets and tables of a model file: what the templates of an indexed model are expanded
/// over. A plain file has none.
#[derive(Debug, Default)]
pub struct Index {
    /// Every set by name, aliases included (an alias names the same data).
    pub(crate) names: IndexMap<String, usize>,
    pub(crate) sets: Vec<SetData>,
    pub(crate) tables: IndexMap<String, Table>,
}

impl Index {
    /// Reads the sets and tables a source declares (their CSV files were read by the load
    /// stage), with every problem found.
    pub fn read(src: &Source) -> (Index, Vec<Diagnostic>) {
        data::read(src)
    }
    /// The set an index name stands for.
    pub(crate) fn set(&self, name: &str) -> Option<&SetData> {
        self.names.get(name).map(|&k| &self.sets[k])
    }
    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }
}
