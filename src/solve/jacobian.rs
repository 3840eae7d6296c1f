//! The Jacobian as a problem emits it: sparse entries in a fixed order plus rank-one terms,
//! `J = S + Σₜ uₜ vₜᵀ`.
//!
//! Why this shape: a problem's Jacobian pattern does not depend on the point, so its (row,
//! column) sequence is recorded once per solve and every later evaluation writes values only,
//! sequentially, with no triplet copies. Rank-one terms keep the Jacobian of a demand system
//! whose cross-price derivatives are an outer product (CES final demand: `∂D_k/∂P_j =
//! u_k v_j` plus a diagonal) at O(n) numbers instead of an n × n block per consumer; the linear
//! solvers use them as they are (dense assembly, Sherman–Morrison–Woodbury, or products).
//!
//! A map from the problem's indices to the solved ones (variables held fixed are dropped,
//! [`DROPPED`]) is applied while recording, so a reduced problem writes into the same storage.
//!
//! Runs whose values are a factor times data the problem already holds (an input-output
//! block's benchmark quantities) are *sourced*: their values are never stored (0.4 GB at
//! N = 5000), and every reader forms them from the source with the same expression, so the
//! products, the row maxima, [`Jacobian::for_each_entry`] (which yields each entry's value, for
//! the direct solvers) and [`Jacobian::to_dense`] all see the same bits.

use std::ops::Range;
use std::sync::Arc;

/// Index of an entry whose row or column is not solved for.
pub const DROPPED: u32 = u32::MAX;

/// A stretch of the entries in emission order: entries with their own (row, column), or a run
/// along one row or one column over consecutive solved indices (stored without indices, so
/// products with it stream values only, as with a dense block, and a run's entry takes 8
/// bytes where a scattered one takes 16). `start` counts entries; `value0` is where its
/// values begin in `Jacobian::values`, which holds none for a run with a [`Source`] (an
/// input-output block's 50 million entries at N = 5000 would take 400 MB there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    start: u32,
    len: u32,
    value0: u32,
    kind: Run,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Entries whose rows and columns are `rows[at..at + len]`, `cols[at..at + len]`.
    Scattered { at: u32 },
    /// Row `row`, columns `col0..col0 + len`.
    Row { row: u32, col0: u32 },
    /// Column `col`, rows `row0..row0 + len`.
    Col { col: u32, row0: u32 },
}

/// Where a run's values come from, as they are not stored: `factor · data[offset + i]`, times
/// the row weight ([`Jacobian::set_row_weights`]) of problem row `weighted_from + i` for a
/// column run (`factor * q` and `factor * q * w`, in that order, wherever a value is formed,
/// so every reader sees the same bits). The data is shared with the problem (an input-output
/// block's benchmark quantities, which its evaluation streams too), so at scale the block is
/// in memory once and a product does not evict what the next evaluation reads; a zero-profit
/// row's run and its sector's market column over the same prices are the same data,
/// multiplied by one fused pass. `start` is the run's first entry (emission order), by which
/// an evaluation that writes values only recognises the run and skips it.
#[derive(Debug, Clone)]
struct Source {
    data: Arc<[f64]>,
    offset: u32,
    factor: f64,
    weighted_from: u32,
    start: u32,
}

/// A segment with no [`Source`].
const NO_SOURCE: u32 = u32::MAX;

/// A piece of the sparse part as products see it: one entry (solved indices, none dropped), a
/// run's values along a row or a column, or a run whose values are read from its source.
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    Entry(usize, usize, f64),
    Row {
        row: usize,
        col0: usize,
        values: &'a [f64],
    },
    Col {
        col: usize,
        row0: usize,
        values: &'a [f64],
    },
    /// Values `factor * data[i]` at (`row`, `col0 + i`).
    SourcedRow {
        row: usize,
        col0: usize,
        factor: f64,
        data: &'a [f64],
    },
    /// Values `factor * data[i] * weights[i]` at (`row0 + i`, `col`).
    SourcedCol {
        col: usize,
        row0: usize,
        factor: f64,
        data: &'a [f64],
        weights: &'a [f64],
    },
}

impl Piece<'_> {
    /// Calls `f(i, value)` for the piece's values in order (an entry's is value 0): a sourced
    /// run's formed as `factor * q` or `factor * q * w`, the stored values' own expressions.
    #[inline]
    pub fn for_each_value(&self, mut f: impl FnMut(usize, f64)) {
        match *self {
            Piece::Entry(_, _, v) => f(0, v),
            Piece::Row { values, .. } | Piece::Col { values, .. } => {
                values.iter().enumerate().for_each(|(i, &v)| f(i, v));
            }
            Piece::SourcedRow { factor, data, .. } => {
                data.iter().enumerate().for_each(|(i, q)| f(i, factor * q));
            }
            Piece::SourcedCol {
                factor,
                data,
                weights,
                ..
            } => {
                let values = data.iter().zip(weights).map(|(q, w)| factor * q * w);
                values.enumerate().for_each(|(i, v)| f(i, v));
            }
        }
    }

    /// Value `i` of the piece, formed as [`Piece::for_each_value`] forms it.
    #[inline]
    pub fn value(&self, i: usize) -> f64 {
        match *self {
            Piece::Entry(_, _, v) => v,
            Piece::Row { values, .. } | Piece::Col { values, .. } => values[i],
            Piece::SourcedRow { factor, data, .. } => factor * data[i],
            Piece::SourcedCol {
                factor,
                data,
                weights,
                ..
            } => factor * data[i] * weights[i],
        }
    }
}

/// |v| if finite, else 0 (what row maxima count), without a branch.
#[inline]
fn finite_abs(v: f64) -> f64 {
    let a = v.abs();
    if a < f64::INFINITY {
        a
    } else {
        0.0
    }
}

/// The larger of two numbers that are not NaN, without a branch (`f64::max` also orders NaN).
#[inline]
fn larger(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// The first index `k` of a sequence of lengths (summing to `total`) at which the lengths
/// before it hold at least half the total and `cut_allowed(k)`: where a fixed two-way split of
/// the work falls (it depends on the lengths only, so the split is the same on any thread
/// count). None if there is no such index.
pub(crate) fn halfway(
    lengths: impl IntoIterator<Item = usize>,
    total: usize,
    cut_allowed: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut seen = 0;
    for (k, len) in lengths.into_iter().enumerate() {
        if 2 * seen >= total && cut_allowed(k) {
            return Some(k);
        }
        seen += len;
    }
    None
}

/// Σ aᵢbᵢ with eight partial sums, so that it vectorises (a plain sum is bound by the
/// latency of one addition after another); the order is fixed, so is the result.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f64 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// [`dot`] of `a(0..b.len())` and `b`, the same operations in the same order (the same bits as
/// `dot` of the values `a` yields), for values formed as they are read (a sourced run's).
#[inline]
pub fn dot_by(a: impl Fn(usize) -> f64, b: &[f64]) -> f64 {
    let n = b.len();
    let full = n - n % 8;
    let mut acc = [0.0f64; 8];
    for j in (0..full).step_by(8) {
        for i in 0..8 {
            acc[i] += a(j + i) * b[j + i];
        }
    }
    let tail: f64 = (full..n).map(|i| a(i) * b[i]).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Σ qᵢpᵢ as [`dot`] does, and `y += alpha·q` in the same pass over `q`.
#[inline]
pub fn dot_axpy(q: &[f64], p: &[f64], alpha: f64, y: &mut [f64]) -> f64 {
    let n = q.len().min(p.len()).min(y.len());
    let (q, p, y) = (&q[..n], &p[..n], &mut y[..n]);
    let mut acc = [0.0f64; 8];
    let (qc, pc) = (q.chunks_exact(8), p.chunks_exact(8));
    let (qr, pr) = (qc.remainder(), pc.remainder());
    let mut yc = y.chunks_exact_mut(8);
    for ((a, b), c) in qc.zip(pc).zip(&mut yc) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
            c[i] += alpha * a[i];
        }
    }
    let mut tail = 0.0;
    for ((a, b), c) in qr.iter().zip(pr).zip(yc.into_remainder()) {
        tail += a * b;
        *c += alpha * a;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Σ qᵢpᵢ as [`dot`] does, and `yᵢ += sᵢ·wᵢ·alpha·qᵢ` in the same pass over `q`.
#[inline]
pub fn dot_axpy_weighted(
    q: &[f64],
    p: &[f64],
    (s, w): (&[f64], &[f64]),
    alpha: f64,
    y: &mut [f64],
) -> f64 {
    let n = q.len().min(p.len()).min(y.len()).min(s.len()).min(w.len());
    let (q, p, s, w, y) = (&q[..n], &p[..n], &s[..n], &w[..n], &mut y[..n]);
    let mut acc = [0.0f64; 8];
    let mut yc = y.chunks_exact_mut(8);
    let (qc, pc, sc, wc) = (
        q.chunks_exact(8),
        p.chunks_exact(8),
        s.chunks_exact(8),
        w.chunks_exact(8),
    );
    let (qr, pr, sr, wr) = (
        qc.remainder(),
        pc.remainder(),
        sc.remainder(),
        wc.remainder(),
    );
    for ((((a, b), sv), wv), c) in qc.zip(pc).zip(sc).zip(wc).zip(&mut yc) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
            c[i] += sv[i] * wv[i] * alpha * a[i];
        }
    }
    let mut tail = 0.0;
    for ((((a, b), sv), wv), c) in qr.iter().zip(pr).zip(sr).zip(wr).zip(yc.into_remainder()) {
        tail += a * b;
        *c += sv * wv * alpha * a;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Ranges of one rank-one term's `u` (rows) and `v` (columns) entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Term {
    u: (u32, u32),
    v: (u32, u32),
}

/// One side of a rank-one term: indices and values.
pub type Side<'a> = (&'a [u32], &'a [f64]);

/// Why the values of an evaluation do not fit the recorded pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Jacobian's pattern changed since it was recorded")]
pub struct PatternChanged;

/// Sparse entries and rank-one terms of a Jacobian; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Jacobian {
    /// Problem index → solved index ([`DROPPED`] for variables not solved for); empty means
    /// the identity.
    map: Vec<u32>,
    /// The map changed since the pattern was recorded: values cannot be placed until the next
    /// recording.
    stale: bool,
    /// Rows and columns of the solved problem, and of the pattern recorded last.
    n: usize,
    recorded_n: usize,
    recording: bool,
    changed: bool,
    overflow: bool,
    /// Sparse entries' values in emission order (duplicates add up) but for the runs with a
    /// [`Source`], the segments the entries form, and the rows and columns of the scattered
    /// segments' entries only (in the same order). `len` counts an evaluation's entries so
    /// far, `n_values` its values, `entries` the recorded pattern's entries.
    rows: Vec<u32>,
    cols: Vec<u32>,
    n_scattered: usize,
    values: Vec<f64>,
    len: usize,
    n_values: usize,
    entries: usize,
    segments: Vec<Segment>,
    n_segments: usize,
    terms: Vec<Term>,
    n_terms: usize,
    u_idx: Vec<u32>,
    u: Vec<f64>,
    u_len: usize,
    v_idx: Vec<u32>,
    v: Vec<f64>,
    v_len: usize,
    /// First segment of a product's second half (0: products in one piece); see
    /// [`Jacobian::mul_add`].
    split: u32,
    /// Per segment, its [`Source`] ([`NO_SOURCE`] if none), the sources recorded, and the
    /// problem's row weights (by problem index) that weight the column runs' sources.
    /// `n_sources` counts the sources of a recording, `next_source` those an evaluation that
    /// writes values has passed.
    segment_source: Vec<u32>,
    sources: Vec<Source>,
    n_sources: usize,
    next_source: usize,
    row_weights: Vec<f64>,
    /// Per solved row, the largest |entry| of the sourced runs, gathered as they are recorded
    /// (while their values are in cache) for [`Jacobian::row_max_abs`].
    source_row_max: Vec<f64>,
}

impl Jacobian {
    /// Sparse entries from which products are split in two halves (below, a product takes
    /// less time than handing half of it to another thread).
    pub const PARALLEL_FROM: usize = 1 << 18;

    /// An empty Jacobian for problems of `n` unknowns (the identity map).
    pub fn new(n: usize) -> Jacobian {
        Jacobian {
            n,
            ..Default::default()
        }
    }

    /// Sets the map from the problem's indices to the solved ones (`usize::MAX` or anything
    /// `≥ u32::MAX` for a dropped index) and the solved dimension. A change invalidates the
    /// recorded pattern.
    pub fn set_map(&mut self, n: usize, map: &[usize]) {
        let same = self.n == n
            && self.map.len() == map.len()
            && self
                .map
                .iter()
                .zip(map)
                .all(|(&a, &b)| a == Self::narrow(b));
        if !same {
            self.n = n;
            self.map.clear();
            self.map.extend(map.iter().map(|&b| Self::narrow(b)));
            self.stale = true;
        }
    }

    /// Back to the identity map (a problem that drops nothing).
    pub fn clear_map(&mut self) {
        if !self.map.is_empty() {
            self.map.clear();
            self.stale = true;
        }
    }

    fn narrow(i: usize) -> u32 {
        u32::try_from(i).unwrap_or(DROPPED)
    }

    /// Starts an evaluation: `record` makes it record (and compare) the pattern as well as the
    /// values; otherwise values are written into the recorded pattern's order.
    pub fn begin(&mut self, n: usize, record: bool) {
        if self.map.is_empty() {
            self.n = n;
        }
        self.recording = record;
        self.changed = false;
        self.overflow = false;
        self.len = 0;
        self.n_values = 0;
        self.next_source = 0;
        self.n_scattered = 0;
        self.n_segments = 0;
        self.n_terms = 0;
        self.u_len = 0;
        self.v_len = 0;
        if record {
            self.n_sources = 0;
            self.source_row_max.clear();
            self.source_row_max.resize(self.n, 0.0);
        }
    }

    /// Sets the problem's row weights (by problem index) that a column run's source is
    /// multiplied by ([`Jacobian::add_col_run_shared`]); read when recording only.
    pub fn set_row_weights(&mut self, weights: &[f64]) {
        if self.recording {
            self.row_weights.clear();
            self.row_weights.extend_from_slice(weights);
        }
    }

    /// Ends an evaluation. When recording: whether the pattern differs from the last one
    /// recorded. When writing values: an error if they did not fit the recorded pattern (the
    /// evaluation must then be repeated with recording on).
    pub fn finish(&mut self) -> Result<bool, PatternChanged> {
        if self.recording {
            // Recorded indices are solved ones: a new map matters only if they changed.
            self.stale = false;
            let mut changed = self.changed || self.recorded_n != self.n;
            self.recorded_n = self.n;
            for (have, len) in [
                (self.entries, self.len),
                (self.segments.len(), self.n_segments),
                (self.rows.len(), self.n_scattered),
                (self.values.len(), self.n_values),
                (self.terms.len(), self.n_terms),
                (self.u_idx.len(), self.u_len),
                (self.v_idx.len(), self.v_len),
            ] {
                changed |= have != len;
            }
            self.segments.truncate(self.n_segments);
            self.segment_source.truncate(self.n_segments);
            self.sources.truncate(self.n_sources);
            self.rows.truncate(self.n_scattered);
            self.cols.truncate(self.n_scattered);
            self.values.truncate(self.n_values);
            self.entries = self.len;
            self.terms.truncate(self.n_terms);
            self.u_idx.truncate(self.u_len);
            self.u.truncate(self.u_len);
            self.v_idx.truncate(self.v_len);
            self.v.truncate(self.v_len);
            self.recording = false;
            self.split = self.halfway();
            Ok(changed)
        } else if self.stale
            || self.overflow
            || self.len != self.entries
            || self.n_values != self.values.len()
            || self.next_source != self.sources.len()
            || self.n_terms != self.terms.len()
            || self.u_len != self.u.len()
            || self.v_len != self.v.len()
        {
            Err(PatternChanged)
        } else {
            Ok(false)
        }
    }

    /// The segment at which the entries recorded are half done (never between a fused pair),
    /// or 0 when there are fewer than [`Jacobian::PARALLEL_FROM`].
    fn halfway(&self) -> u32 {
        if self.len < Self::PARALLEL_FROM {
            return 0;
        }
        let lengths = self.segments.iter().map(|seg| seg.len as usize);
        let cut_allowed = |k: usize| k == 0 || self.fused_partner(k - 1, k + 1) != Some(k);
        halfway(lengths, self.len, cut_allowed).map_or(0, |k| k as u32)
    }

    #[inline]
    fn index(&self, i: usize) -> u32 {
        if self.map.is_empty() {
            i as u32
        } else {
            self.map[i]
        }
    }

    /// Adds `value` at (`row`, `col`) (problem indices).
    #[inline]
    pub fn add(&mut self, row: usize, col: usize, value: f64) {
        let k = self.len;
        self.len += 1;
        if self.recording {
            self.record(k, row, col, value);
            return;
        }
        let i = self.n_values;
        self.n_values += 1;
        if let Some(slot) = self.values.get_mut(i) {
            *slot = value;
        } else {
            self.overflow = true;
        }
    }

    #[cold]
    #[inline(never)]
    fn record(&mut self, k: usize, row: usize, col: usize, value: f64) {
        let extends = self.n_segments > 0 && {
            let s = &self.segments[self.n_segments - 1];
            matches!(s.kind, Run::Scattered { .. }) && (s.start + s.len) as usize == k
        };
        if extends {
            let s = &mut self.segments[self.n_segments - 1];
            s.len += 1;
        } else {
            let seg = Segment {
                start: k as u32,
                len: 1,
                value0: self.n_values as u32,
                kind: Run::Scattered {
                    at: self.n_scattered as u32,
                },
            };
            self.record_segment(seg, false);
        }
        self.record_entry(row, col, value);
    }

    /// Records the next segment (a scattered one grows as its entries come); `sourced`: a run
    /// whose values its [`Source`] gives (attached by the caller).
    fn record_segment(&mut self, seg: Segment, sourced: bool) {
        let k = self.n_segments;
        self.n_segments += 1;
        let was_sourced = match self.segment_source.get_mut(k) {
            Some(src) => {
                let was = *src != NO_SOURCE;
                *src = NO_SOURCE;
                was
            }
            None => {
                self.segment_source.push(NO_SOURCE);
                false
            }
        };
        if k < self.segments.len() {
            // Starts and kinds fix the segmentation (a scattered segment grows as its entries
            // come; its entries' indices are compared one by one); a run's length is part of
            // its pattern, as it has no indices of its own to compare, and so is whether its
            // values are stored or read from a source (the stored values' places follow).
            let old = self.segments[k];
            let is_run = !matches!(seg.kind, Run::Scattered { .. });
            if old.start != seg.start
                || old.kind != seg.kind
                || (is_run && old.len != seg.len)
                || was_sourced != sourced
            {
                self.changed = true;
            }
            self.segments[k] = seg;
        } else {
            self.changed = true;
            self.segments.push(seg);
        }
    }

    /// Records the next scattered entry, at problem indices (`row`, `col`).
    fn record_entry(&mut self, row: usize, col: usize, value: f64) {
        let (r, c) = (self.index(row), self.index(col));
        let i = self.n_scattered;
        self.n_scattered += 1;
        if i < self.rows.len() {
            if self.rows[i] != r || self.cols[i] != c {
                self.changed = true;
                self.rows[i] = r;
                self.cols[i] = c;
            }
        } else {
            self.changed = true;
            self.rows.push(r);
            self.cols.push(c);
        }
        self.record_value(value);
    }

    /// Records the next stored value.
    #[inline]
    fn record_value(&mut self, value: f64) {
        let i = self.n_values;
        self.n_values += 1;
        if i < self.values.len() {
            self.values[i] = value;
        } else {
            self.changed = true;
            self.values.push(value);
        }
    }

    /// Adds `values[i]` at (`row`, `col0 + i`) for consecutive columns (problem indices).
    /// `constant`: the values do not depend on the point (only on what the pattern was
    /// recorded with), so they are taken when recording and skipped afterwards.
    pub fn add_row_run(
        &mut self,
        (row, col0): (usize, usize),
        values: impl ExactSizeIterator<Item = f64>,
        constant: bool,
    ) {
        self.add_run(true, row, col0, values, constant);
    }

    /// Adds `values[i]` at (`row0 + i`, `col`) for consecutive rows (problem indices);
    /// `constant` as for [`Jacobian::add_row_run`].
    pub fn add_col_run(
        &mut self,
        (row0, col): (usize, usize),
        values: impl ExactSizeIterator<Item = f64>,
        constant: bool,
    ) {
        self.add_run(false, col, row0, values, constant);
    }

    /// [`Jacobian::add_row_run`] of the constant values `factor · data[range]`, which are not
    /// stored: every reader forms them from `data` itself (see [`Source`]). Stored only if the
    /// map scatters the run.
    pub fn add_row_run_shared(
        &mut self,
        (row, col0): (usize, usize),
        data: &Arc<[f64]>,
        range: Range<usize>,
        factor: f64,
    ) {
        if self.add_sourced(true, (row, col0), data, range.clone(), (factor, u32::MAX)) {
            return;
        }
        let values = data[range].iter().map(|q| factor * q);
        self.add_run(true, row, col0, values, true);
    }

    /// [`Jacobian::add_col_run`] of the constant values `factor · data[range.start + i] ·
    /// w[row0 + i]`, `w` the row weights set for this recording
    /// ([`Jacobian::set_row_weights`]); not stored, as for [`Jacobian::add_row_run_shared`].
    pub fn add_col_run_shared(
        &mut self,
        (row0, col): (usize, usize),
        data: &Arc<[f64]>,
        range: Range<usize>,
        factor: f64,
    ) {
        if self.add_sourced(
            false,
            (col, row0),
            data,
            range.clone(),
            (factor, row0 as u32),
        ) {
            return;
        }
        // Scattered by the map: stored. The weights are taken out for the call (the values
        // borrow them), then put back.
        let weights = std::mem::take(&mut self.row_weights);
        if self.recording {
            let w = &weights[row0..row0 + range.len()];
            let values = data[range].iter().zip(w).map(|(q, w)| factor * q * w);
            self.add_run(false, col, row0, values, true);
        } else {
            let values = std::iter::repeat_n(0.0, range.len());
            self.add_run(false, col, row0, values, true);
        }
        self.row_weights = weights;
    }

    /// A shared run as a run with a [`Source`] and no stored values, if the map keeps it a
    /// run (when recording) or it was recorded so (otherwise); false if it is to be stored.
    /// The sourced runs' row maxima are gathered here, for [`Jacobian::row_max_abs`].
    fn add_sourced(
        &mut self,
        along_row: bool,
        (fixed, first): (usize, usize),
        data: &Arc<[f64]>,
        range: Range<usize>,
        (factor, weighted_from): (f64, u32),
    ) -> bool {
        let (k, len) = (self.len, range.len());
        if !self.recording {
            let recorded = self.sources.get(self.next_source);
            let sourced = recorded.is_some_and(|s| s.start as usize == k);
            if sourced {
                self.len += len;
                self.next_source += 1;
            }
            return sourced;
        }
        let kind = self.run_kind(along_row, fixed, first, len);
        if matches!(kind, Run::Scattered { .. }) {
            return false;
        }
        self.len += len;
        self.record_run(k, len, kind, true);
        let source = Source {
            data: Arc::clone(data),
            offset: range.start as u32,
            factor,
            weighted_from,
            start: k as u32,
        };
        let i = self.n_sources;
        self.n_sources += 1;
        match self.sources.get_mut(i) {
            Some(old) => *old = source,
            None => self.sources.push(source),
        }
        let s = self.n_segments - 1;
        self.segment_source[s] = i as u32;
        // The values formed as every reader forms them; branch-free, in eight lanes for a row,
        // so that it vectorises (a maximum does not depend on the order).
        let mut out = std::mem::take(&mut self.source_row_max);
        match self.run_piece(s) {
            Piece::SourcedRow {
                row, factor, data, ..
            } => {
                let mut m = [0.0f64; 8];
                let chunks = data.chunks_exact(8);
                let tail = chunks.remainder().iter().map(|q| finite_abs(factor * q));
                for c in chunks {
                    for i in 0..8 {
                        m[i] = larger(m[i], finite_abs(factor * c[i]));
                    }
                }
                out[row] = tail.chain(m).fold(out[row], larger);
            }
            Piece::SourcedCol {
                row0,
                factor,
                data,
                weights,
                ..
            } => {
                let out = &mut out[row0..row0 + data.len()];
                for ((o, q), w) in out.iter_mut().zip(data).zip(weights) {
                    *o = larger(*o, finite_abs(factor * q * w));
                }
            }
            _ => unreachable!("a run with a source"),
        }
        self.source_row_max = out;
        true
    }

    /// Records the segment of a run (or of its scattered entries) of `len` entries from entry
    /// `k`, its values (if stored) next.
    fn record_run(&mut self, k: usize, len: usize, kind: Run, sourced: bool) {
        let seg = Segment {
            start: k as u32,
            len: len as u32,
            value0: self.n_values as u32,
            kind,
        };
        self.record_segment(seg, sourced);
    }

    /// What a run of `len` along problem row (`along_row`) or column `fixed` from problem index
    /// `first` is under the map: a run if its indices stay consecutive, else scattered entries.
    fn run_kind(&self, along_row: bool, fixed: usize, first: usize, len: usize) -> Run {
        let f = self.index(fixed);
        let i0 = self.index(first);
        let consecutive = f != DROPPED
            && i0 != DROPPED
            && (0..len).all(|i| self.index(first + i) == i0.wrapping_add(i as u32));
        match (consecutive, along_row) {
            (false, _) => Run::Scattered {
                at: self.n_scattered as u32,
            },
            (true, true) => Run::Row { row: f, col0: i0 },
            (true, false) => Run::Col { col: f, row0: i0 },
        }
    }

    fn add_run(
        &mut self,
        along_row: bool,
        fixed: usize,
        first: usize,
        values: impl ExactSizeIterator<Item = f64>,
        constant: bool,
    ) {
        let (k, len) = (self.len, values.len());
        self.len += len;
        if !self.recording {
            let i = self.n_values;
            self.n_values += len;
            if constant {
                if self.values.len() < i + len {
                    self.overflow = true;
                }
                return;
            }
            match self.values.get_mut(i..i + len) {
                Some(dst) => dst.iter_mut().zip(values).for_each(|(d, v)| *d = v),
                None => self.overflow = true,
            }
            return;
        }
        let kind = self.run_kind(along_row, fixed, first, len);
        self.record_run(k, len, kind, false);
        if !matches!(kind, Run::Scattered { .. }) {
            // Indices follow from the run's first: values only.
            values.for_each(|v| self.record_value(v));
            return;
        }
        for (i, v) in values.enumerate() {
            let (r, c) = if along_row {
                (fixed, first + i)
            } else {
                (first + i, fixed)
            };
            self.record_entry(r, c, v);
        }
    }

    /// Adds the rank-one term `u vᵀ`, `u` given as (row, value) and `v` as (column, value)
    /// (problem indices; repeated indices add up).
    pub fn add_rank_one(
        &mut self,
        u: impl IntoIterator<Item = (usize, f64)>,
        v: impl IntoIterator<Item = (usize, f64)>,
    ) {
        let u0 = self.u_len;
        for (i, value) in u {
            Self::put(
                self.recording,
                &mut self.changed,
                &mut self.overflow,
                (&mut self.u_idx, &mut self.u),
                self.u_len,
                Self::index_in(&self.map, i),
                value,
            );
            self.u_len += 1;
        }
        let v0 = self.v_len;
        for (i, value) in v {
            Self::put(
                self.recording,
                &mut self.changed,
                &mut self.overflow,
                (&mut self.v_idx, &mut self.v),
                self.v_len,
                Self::index_in(&self.map, i),
                value,
            );
            self.v_len += 1;
        }
        let term = Term {
            u: (u0 as u32, self.u_len as u32),
            v: (v0 as u32, self.v_len as u32),
        };
        let k = self.n_terms;
        self.n_terms += 1;
        if self.recording {
            if k < self.terms.len() {
                if self.terms[k] != term {
                    self.changed = true;
                    self.terms[k] = term;
                }
            } else {
                self.changed = true;
                self.terms.push(term);
            }
        } else if self.terms.get(k) != Some(&term) {
            self.overflow = true;
        }
    }

    #[inline]
    fn index_in(map: &[u32], i: usize) -> u32 {
        if map.is_empty() {
            i as u32
        } else {
            map[i]
        }
    }

    #[inline]
    fn put(
        recording: bool,
        changed: &mut bool,
        overflow: &mut bool,
        (idx, val): (&mut Vec<u32>, &mut Vec<f64>),
        k: usize,
        i: u32,
        value: f64,
    ) {
        if recording {
            if k < idx.len() {
                if idx[k] != i {
                    *changed = true;
                    idx[k] = i;
                }
                val[k] = value;
            } else {
                *changed = true;
                idx.push(i);
                val.push(value);
            }
        } else if let Some(slot) = val.get_mut(k) {
            *slot = value;
        } else {
            *overflow = true;
        }
    }

    /// Rows and columns of the solved problem.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// Number of sparse entries (runs included).
    pub fn nnz(&self) -> usize {
        self.entries
    }

    /// Calls `f(k, row, column, value)` for every sparse entry in emission order (`k` its
    /// number, solved indices, [`DROPPED`] for dropped ones), runs included when `runs`: the
    /// indices a run does not store follow from its first, and a sourced run's values are
    /// formed from its source as every reader forms them (the same bits).
    #[inline]
    pub fn for_each_entry(&self, runs: bool, mut f: impl FnMut(usize, u32, u32, f64)) {
        for (s, seg) in self.segments.iter().enumerate() {
            let (a, len) = (seg.start as usize, seg.len as usize);
            match seg.kind {
                Run::Scattered { at } => {
                    let (at, v0) = (at as usize, seg.value0 as usize);
                    let (rows, cols) = (&self.rows[at..at + len], &self.cols[at..at + len]);
                    let values = &self.values[v0..v0 + len];
                    for (i, ((&r, &c), &v)) in rows.iter().zip(cols).zip(values).enumerate() {
                        f(a + i, r, c, v);
                    }
                }
                Run::Row { row, col0 } if runs => {
                    let piece = self.run_piece(s);
                    piece.for_each_value(|i, v| f(a + i, row, col0 + i as u32, v));
                }
                Run::Col { col, row0 } if runs => {
                    let piece = self.run_piece(s);
                    piece.for_each_value(|i, v| f(a + i, row0 + i as u32, col, v));
                }
                _ => {}
            }
        }
    }

    /// Number of sparse entries that lie in runs.
    pub fn run_entries(&self) -> usize {
        self.entries - self.rows.len()
    }

    /// Number of rank-one terms.
    pub fn rank(&self) -> usize {
        self.terms.len()
    }

    /// Rank-one term `t`: (rows, u values), (columns, v values).
    pub fn term(&self, t: usize) -> (Side<'_>, Side<'_>) {
        let Term { u, v } = self.terms[t];
        let (u0, u1) = (u.0 as usize, u.1 as usize);
        let (v0, v1) = (v.0 as usize, v.1 as usize);
        (
            (&self.u_idx[u0..u1], &self.u[u0..u1]),
            (&self.v_idx[v0..v1], &self.v[v0..v1]),
        )
    }

    /// Entries the dense matrix would have if every rank-one term were formed (an upper
    /// bound: coinciding positions count once per term).
    pub fn fill_estimate(&self) -> usize {
        let n = self.n.max(1);
        let formed: usize = (0..self.rank())
            .map(|t| {
                let ((ru, _), (cv, _)) = self.term(t);
                ru.len() * cv.len()
            })
            .sum();
        (self.entries + formed).min(n * n)
    }

    /// Calls `f` with the sparse part piece by piece, in emission order.
    #[inline]
    pub fn for_each_piece(&self, f: impl FnMut(Piece<'_>)) {
        self.pieces_of(0..self.segments.len(), f);
    }

    /// Calls `f` with the pieces of the segments `range`, in order.
    #[inline]
    fn pieces_of(&self, range: Range<usize>, mut f: impl FnMut(Piece<'_>)) {
        for s in range {
            let seg = self.segments[s];
            if let Run::Scattered { at } = seg.kind {
                let (at, v0, len) = (at as usize, seg.value0 as usize, seg.len as usize);
                let (rows, cols) = (&self.rows[at..at + len], &self.cols[at..at + len]);
                let values = &self.values[v0..v0 + len];
                for ((&r, &c), &v) in rows.iter().zip(cols).zip(values) {
                    if r != DROPPED && c != DROPPED {
                        f(Piece::Entry(r as usize, c as usize, v));
                    }
                }
            } else {
                f(self.run_piece(s));
            }
        }
    }

    /// Run segment `s` as a piece: its stored values, or its source.
    #[inline]
    fn run_piece(&self, s: usize) -> Piece<'_> {
        let seg = self.segments[s];
        let len = seg.len as usize;
        let src = self.segment_source[s];
        if src == NO_SOURCE {
            let v0 = seg.value0 as usize;
            let values = &self.values[v0..v0 + len];
            return match seg.kind {
                Run::Row { row, col0 } => Piece::Row {
                    row: row as usize,
                    col0: col0 as usize,
                    values,
                },
                Run::Col { col, row0 } => Piece::Col {
                    col: col as usize,
                    row0: row0 as usize,
                    values,
                },
                Run::Scattered { .. } => unreachable!("entries are not a run"),
            };
        }
        let source = &self.sources[src as usize];
        let (a, factor) = (source.offset as usize, source.factor);
        let data = &source.data[a..a + len];
        match seg.kind {
            Run::Row { row, col0 } => Piece::SourcedRow {
                row: row as usize,
                col0: col0 as usize,
                factor,
                data,
            },
            Run::Col { col, row0 } => {
                let w0 = source.weighted_from as usize;
                Piece::SourcedCol {
                    col: col as usize,
                    row0: row0 as usize,
                    factor,
                    data,
                    weights: &self.row_weights[w0..w0 + len],
                }
            }
            Run::Scattered { .. } => unreachable!("scattered entries have no source"),
        }
    }

    /// `y += S x` over segments `lo..hi` with each row multiplied by `row_scale`; runs with a
    /// [`Source`] read it (a zero-profit row's run followed by the market column over the same
    /// prices and data in one pass), the others their values.
    fn mul_add_segments(
        &self,
        (lo, hi): (usize, usize),
        row_scale: &[f64],
        x: &[f64],
        y: &mut [f64],
    ) {
        let mut k = lo;
        while k < hi {
            if self.segment_source[k] != NO_SOURCE {
                if let Some(next) = self.fused_partner(k, hi) {
                    self.mul_add_fused(k, next, row_scale, x, y);
                    k += 2;
                    continue;
                }
            }
            self.pieces_of(k..k + 1, |piece| match piece {
                Piece::Entry(r, c, v) => y[r] += row_scale[r] * v * x[c],
                Piece::Row { row, col0, values } => {
                    y[row] += row_scale[row] * dot(values, &x[col0..col0 + values.len()]);
                }
                Piece::Col { col, row0, values } => {
                    let (xc, end) = (x[col], row0 + values.len());
                    for ((yi, si), v) in y[row0..end]
                        .iter_mut()
                        .zip(&row_scale[row0..end])
                        .zip(values)
                    {
                        *yi += si * v * xc;
                    }
                }
                Piece::SourcedRow {
                    row,
                    col0,
                    factor,
                    data,
                } => {
                    let len = data.len();
                    y[row] += row_scale[row] * factor * dot(data, &x[col0..col0 + len]);
                }
                Piece::SourcedCol {
                    col,
                    row0,
                    factor,
                    data,
                    weights,
                } => {
                    let (xc, end) = (factor * x[col], row0 + data.len());
                    for (((yi, si), w), q) in y[row0..end]
                        .iter_mut()
                        .zip(&row_scale[row0..end])
                        .zip(weights)
                        .zip(data)
                    {
                        *yi += si * w * xc * q;
                    }
                }
            });
            k += 1;
        }
    }

    /// The column run that segment `k` (a row run with a source) fuses with: the next
    /// segment, before `hi`, a column run over the same indices with the same data.
    #[inline]
    fn fused_partner(&self, k: usize, hi: usize) -> Option<usize> {
        let next = k + 1;
        if next >= hi || self.segment_source[next] == NO_SOURCE {
            return None;
        }
        let (a, b) = (self.segments[k], self.segments[next]);
        let (Run::Row { col0, .. }, Run::Col { row0, .. }) = (a.kind, b.kind) else {
            return None;
        };
        let (sa, sb) = (
            &self.sources[self.segment_source[k] as usize],
            &self.sources[self.segment_source[next] as usize],
        );
        (col0 == row0
            && a.len == b.len
            && sa.offset == sb.offset
            && Arc::ptr_eq(&sa.data, &sb.data))
        .then_some(next)
    }

    /// Row run `k` and column run `next` over the same indices and data, in one pass over the
    /// data: `y[row] += s·f_r·Σ qᵢxᵢ` and `y[i] += sᵢwᵢ·f_c·x[col]·qᵢ`.
    fn mul_add_fused(&self, k: usize, next: usize, row_scale: &[f64], x: &[f64], y: &mut [f64]) {
        let (Run::Row { row, col0 }, Run::Col { col, .. }) =
            (self.segments[k].kind, self.segments[next].kind)
        else {
            unreachable!("checked by fused_partner");
        };
        let (sr, sc) = (
            &self.sources[self.segment_source[k] as usize],
            &self.sources[self.segment_source[next] as usize],
        );
        let (i0, len) = (col0 as usize, self.segments[k].len as usize);
        let (a, w0) = (sr.offset as usize, sc.weighted_from as usize);
        let data = &sr.data[a..a + len];
        let xc = sc.factor * x[col as usize];
        let sum = dot_axpy_weighted(
            data,
            &x[i0..i0 + len],
            (&row_scale[i0..i0 + len], &self.row_weights[w0..w0 + len]),
            xc,
            &mut y[i0..i0 + len],
        );
        let row = row as usize;
        y[row] += row_scale[row] * sr.factor * sum;
    }

    /// `y += J x` with each row of the product multiplied by `row_scale` (solved indices).
    ///
    /// A Jacobian with a large sparse part ([`Jacobian::PARALLEL_FROM`] entries) is multiplied
    /// in two halves fixed when its pattern was recorded: the second half into `spare`, on
    /// another thread when rayon has one, then added to `y`. At scale a product is bound by
    /// memory bandwidth, which one core does not saturate. The split depends on the pattern
    /// only, so the sums, hence the result, are the same whatever the thread count.
    pub fn mul_add(&self, row_scale: &[f64], x: &[f64], y: &mut [f64], spare: &mut Vec<f64>) {
        let (split, end) = (self.split as usize, self.segments.len());
        if split == 0 {
            self.mul_add_segments((0, end), row_scale, x, y);
        } else {
            spare.clear();
            spare.resize(y.len(), 0.0);
            rayon::join(
                || self.mul_add_segments((0, split), row_scale, x, y),
                || self.mul_add_segments((split, end), row_scale, x, spare),
            );
            for (yi, si) in y.iter_mut().zip(spare.iter()) {
                *yi += si;
            }
        }
        for t in 0..self.rank() {
            let ((ru, u), (cv, v)) = self.term(t);
            let s: f64 = cv
                .iter()
                .zip(v)
                .filter(|(c, _)| **c != DROPPED)
                .map(|(&c, &v)| v * x[c as usize])
                .sum();
            if s != 0.0 {
                for (&r, &u) in ru.iter().zip(u) {
                    if r != DROPPED {
                        y[r as usize] += row_scale[r as usize] * u * s;
                    }
                }
            }
        }
    }

    /// `y += Jᵀ w` (solved indices).
    pub fn tr_mul_add(&self, w: &[f64], y: &mut [f64]) {
        self.for_each_piece(|piece| match piece {
            Piece::Entry(r, c, v) => y[c] += v * w[r],
            Piece::Row { row, col0, .. } | Piece::SourcedRow { row, col0, .. } => {
                let wr = w[row];
                piece.for_each_value(|i, v| y[col0 + i] += v * wr);
            }
            Piece::Col { col, row0, values } => {
                y[col] += dot(values, &w[row0..row0 + values.len()]);
            }
            Piece::SourcedCol {
                col, row0, data, ..
            } => {
                y[col] += dot_by(|i| piece.value(i), &w[row0..row0 + data.len()]);
            }
        });
        for t in 0..self.rank() {
            let ((ru, u), (cv, v)) = self.term(t);
            let s: f64 = ru
                .iter()
                .zip(u)
                .filter(|(r, _)| **r != DROPPED)
                .map(|(&r, &u)| u * w[r as usize])
                .sum();
            if s != 0.0 {
                for (&c, &v) in cv.iter().zip(v) {
                    if c != DROPPED {
                        y[c as usize] += v * s;
                    }
                }
            }
        }
    }

    /// Largest |entry| of each row (solved indices), rank-one terms bounded by |u_r|·max|v|;
    /// `out` is raised to it.
    pub fn row_max_abs(&self, out: &mut [f64]) {
        let finite_abs = |v: &f64| if v.is_finite() { v.abs() } else { 0.0 };
        self.for_each_piece(|piece| match piece {
            Piece::Entry(r, _, v) => out[r] = out[r].max(finite_abs(&v)),
            Piece::Row { row, values, .. } => {
                let m = values.iter().map(finite_abs).fold(0.0f64, f64::max);
                out[row] = out[row].max(m);
            }
            Piece::Col { row0, values, .. } => {
                for (o, v) in out[row0..row0 + values.len()].iter_mut().zip(values) {
                    *o = o.max(finite_abs(v));
                }
            }
            // A sourced run's maxima were gathered as it was recorded (below).
            Piece::SourcedRow { .. } | Piece::SourcedCol { .. } => {}
        });
        if !self.sources.is_empty() {
            for (o, m) in out.iter_mut().zip(&self.source_row_max) {
                *o = o.max(*m);
            }
        }
        for t in 0..self.rank() {
            let ((ru, u), (cv, v)) = self.term(t);
            let vmax = cv
                .iter()
                .zip(v)
                .filter(|(c, v)| **c != DROPPED && v.is_finite())
                .fold(0.0f64, |a, (_, v)| a.max(v.abs()));
            for (&r, &u) in ru.iter().zip(u) {
                let m = u.abs() * vmax;
                if r != DROPPED && m.is_finite() {
                    out[r as usize] = out[r as usize].max(m);
                }
            }
        }
    }

    /// The Jacobian as a dense row-major matrix (tests and small problems).
    pub fn to_dense(&self) -> Vec<Vec<f64>> {
        let n = self.n;
        let mut a = vec![vec![0.0; n]; n];
        self.for_each_entry(true, |_, r, c, v| {
            if r != DROPPED && c != DROPPED {
                a[r as usize][c as usize] += v;
            }
        });
        for t in 0..self.rank() {
            let ((ru, u), (cv, v)) = self.term(t);
            for (&r, &u) in ru.iter().zip(u) {
                for (&c, &v) in cv.iter().zip(v) {
                    if r != DROPPED && c != DROPPED {
                        a[r as usize][c as usize] += u * v;
                    }
                }
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(j: &mut Jacobian, x: f64) {
        j.add(0, 0, 2.0 * x);
        j.add(1, 2, 1.0);
        j.add(0, 0, 1.0);
        j.add_rank_one([(1, 1.0), (2, x)], [(0, 2.0), (2, 3.0)]);
    }

    #[test]
    fn values_fill_the_recorded_pattern_and_terms_form_outer_products() {
        let mut j = Jacobian::new(3);
        j.begin(3, true);
        emit(&mut j, 1.0);
        assert_eq!(j.finish(), Ok(true));
        j.begin(3, false);
        emit(&mut j, 2.0);
        assert_eq!(j.finish(), Ok(false));
        let a = j.to_dense();
        assert_eq!(a[0], vec![5.0, 0.0, 0.0]);
        assert_eq!(a[1], vec![2.0, 0.0, 1.0 + 3.0]);
        assert_eq!(a[2], vec![4.0, 0.0, 6.0]);
        // The same pattern recorded again is unchanged.
        j.begin(3, true);
        emit(&mut j, 3.0);
        assert_eq!(j.finish(), Ok(false));
        // Products agree with the dense matrix.
        let x = [1.0, -2.0, 0.5];
        let s = [1.0, 2.0, 3.0];
        let mut y = vec![0.0; 3];
        j.mul_add(&s, &x, &mut y, &mut Vec::new());
        let a = j.to_dense();
        for r in 0..3 {
            let want: f64 = (0..3).map(|c| a[r][c] * x[c]).sum::<f64>() * s[r];
            assert!((y[r] - want).abs() < 1e-14);
        }
        let mut z = vec![0.0; 3];
        j.tr_mul_add(&x, &mut z);
        for c in 0..3 {
            let want: f64 = (0..3).map(|r| a[r][c] * x[r]).sum();
            assert!((z[c] - want).abs() < 1e-14);
        }
    }

    /// `J x` (rows scaled) and `Jᵀ x` agree with the dense matrix `a` of `j`.
    fn assert_products_agree(j: &Jacobian, a: &[Vec<f64>], label: &str) {
        let n = a.len();
        let x: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
        let s: Vec<f64> = (0..n).map(|i| 0.5 + i as f64).collect();
        let (mut y, mut z) = (vec![0.0; n], vec![0.0; n]);
        j.mul_add(&s, &x, &mut y, &mut Vec::new());
        j.tr_mul_add(&x, &mut z);
        for r in 0..n {
            let want: f64 = (0..n).map(|c| a[r][c] * x[c]).sum::<f64>() * s[r];
            assert!((y[r] - want).abs() < 1e-13, "{label}: {y:?}");
            let want: f64 = (0..n).map(|c| a[c][r] * x[c]).sum();
            assert!((z[r] - want).abs() < 1e-13, "{label}: {z:?}");
        }
    }

    /// A Jacobian of 4 problem variables under `map` (None: the identity), and its solved size.
    fn with_map(map: &Option<Vec<usize>>) -> (Jacobian, usize) {
        let n = if map.is_some() { 3 } else { 4 };
        let mut j = Jacobian::new(4);
        if let Some(m) = map {
            j.set_map(n, m);
        }
        (j, n)
    }

    #[test]
    fn runs_multiply_like_their_entries_and_split_where_the_map_drops_an_index() {
        let emit_runs = |j: &mut Jacobian, x: f64| {
            j.add(2, 0, 1.0);
            j.add_row_run((0, 1), [x, 2.0, 3.0].into_iter(), false);
            j.add_col_run((1, 0), [4.0, x].into_iter(), false);
            // Constant: what was recorded stays.
            j.add_col_run((1, 3), [x, 1.0].into_iter(), true);
        };
        for map in [None, Some(vec![0, 1, usize::MAX, 2])] {
            let (mut j, n) = with_map(&map);
            j.begin(n, true);
            emit_runs(&mut j, 1.0);
            j.finish().unwrap();
            j.begin(n, false);
            emit_runs(&mut j, 5.0);
            assert_eq!(j.finish(), Ok(false));
            let a = j.to_dense();
            assert_products_agree(&j, &a, &format!("{map:?}"));
            assert_eq!(a[0][1], 5.0);
            if map.is_none() {
                assert_eq!(a[1][3], 1.0);
            }
        }
    }

    #[test]
    fn a_large_product_runs_in_two_halves_with_the_same_bits_on_any_thread_count() {
        // 600 row runs and 600 column runs of 300: 360,000 entries, above PARALLEL_FROM.
        let n = 600;
        let value = |r: usize, c: usize| ((r * 7 + c * 13) % 17) as f64 - 8.0;
        let mut j = Jacobian::new(n);
        j.begin(n, true);
        for r in 0..n {
            j.add_row_run((r, 0), (0..n / 2).map(|c| value(r, c)), true);
            j.add_col_run((0, r), (0..n / 2).map(|i| value(i, r) + 0.5), true);
        }
        j.add(3, 599, 2.0);
        j.finish().unwrap();
        assert!(
            j.len >= Jacobian::PARALLEL_FROM && j.split > 0,
            "split at {}",
            j.split
        );
        let x: Vec<f64> = (0..n).map(|i| 1.0 + (i % 11) as f64 / 7.0).collect();
        let s: Vec<f64> = (0..n).map(|i| 0.5 + (i % 5) as f64).collect();
        let a = j.to_dense();
        let product_on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut y = vec![0.0; n];
            pool.install(|| j.mul_add(&s, &x, &mut y, &mut Vec::new()));
            y
        };
        let (one, two) = (product_on(1), product_on(2));
        for r in 0..n {
            let want: f64 = (0..n).map(|c| a[r][c] * x[c]).sum::<f64>() * s[r];
            assert!(
                (one[r] - want).abs() <= 1e-9 * want.abs().max(1.0),
                "row {r}"
            );
            assert_eq!(one[r].to_bits(), two[r].to_bits(), "row {r}");
        }
    }

    #[test]
    fn shared_runs_multiply_like_their_values_fused_or_not_and_where_the_map_drops_an_index() {
        let data: Arc<[f64]> = vec![0.5, 2.0, -1.0, 3.0, 4.0].into();
        let weights = [1.0, 0.5, 2.0, 0.25];
        let emit = |j: &mut Jacobian| {
            j.set_row_weights(&weights);
            j.add(0, 0, 1.5);
            // Fused: a row run over 1..3 and the column run over the same rows and data.
            j.add_row_run_shared((0, 1), &data, 1..4, -2.0);
            j.add_col_run_shared((1, 0), &data, 1..4, 3.0);
            // Alone: a column run with other data, a row run with an offset.
            j.add_col_run_shared((1, 3), &data, 0..3, -1.0);
            j.add_row_run_shared((3, 0), &data, 2..5, 0.5);
        };
        for map in [None, Some(vec![0, 1, usize::MAX, 2])] {
            let (mut j, n) = with_map(&map);
            j.begin(n, true);
            emit(&mut j);
            j.finish().unwrap();
            let sources = j.segment_source.iter().filter(|&&s| s != NO_SOURCE).count();
            // Every run crosses the dropped index 2 under the map: all scatter.
            assert_eq!(sources, if map.is_none() { 4 } else { 0 }, "{map:?}");
            // Values written again (not recorded): the constant runs stay.
            j.begin(n, false);
            emit(&mut j);
            assert_eq!(j.finish(), Ok(false));
            let a = j.to_dense();
            if map.is_none() {
                assert_eq!(a[0][1..4], [-4.0, 2.0, -6.0]);
                // Row 3's first entry: 3·3·0.25 from the column run, 0.5·(−1) from its own.
                assert_eq!([a[1][0], a[2][0], a[3][0]], [3.0, -6.0, 1.75]);
                assert_eq!([a[1][3], a[2][3], a[3][3]], [-0.25, -4.0, 0.25]);
                assert_eq!(a[3][1..3], [1.5, 2.0]);
            }
            // Row maxima from the sources: the values' own bits (a row's duplicates apart).
            if map.is_none() {
                let mut m = vec![0.0; n];
                j.row_max_abs(&mut m);
                assert_eq!(m, [6.0, 3.0, 6.0, 2.25]);
            }
            let x: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
            let s: Vec<f64> = (0..n).map(|i| 0.5 + i as f64).collect();
            let mut y = vec![0.0; n];
            j.mul_add(&s, &x, &mut y, &mut Vec::new());
            for r in 0..n {
                let want: f64 = (0..n).map(|c| a[r][c] * x[c]).sum::<f64>() * s[r];
                assert!((y[r] - want).abs() < 1e-13, "{map:?}: {y:?}");
            }
        }
    }

    /// What [`walked_runs`] emits, as problem-index triplets formed independently of the
    /// Jacobian (`factor * q`, `factor * q * w`): (row, column, value) in emission order.
    fn walked_triplets(data: &[f64], weights: &[f64]) -> Vec<(usize, usize, f64)> {
        let mut t = vec![(0, 0, 1.5)];
        let row_run = |t: &mut Vec<_>, (row, col0), (a, z), f: f64| {
            for (i, q) in data[a..z].iter().enumerate() {
                t.push((row, col0 + i, f * q));
            }
        };
        let col_run = |t: &mut Vec<_>, (row0, col), (a, z), f: f64| {
            for (i, q) in data[a..z].iter().enumerate() {
                t.push((row0 + i, col, f * q * weights[row0 + i]));
            }
        };
        row_run(&mut t, (0, 1), (1, 4), -2.0);
        col_run(&mut t, (1, 0), (1, 4), 3.0);
        t.extend([(3, 0, 0.125), (3, 1, 0.25)]);
        col_run(&mut t, (1, 3), (0, 3), -1.0);
        row_run(&mut t, (3, 0), (3, 5), 0.5);
        t.push((2, 1, 7.0));
        t
    }

    /// Scattered entries, a stored run, sourced runs (a fused pair, a weighted column alone, a
    /// row run that a map dropping index 2 keeps a run) and a rank-one term.
    fn walked_runs(j: &mut Jacobian, data: &Arc<[f64]>, weights: &[f64], stored: bool) {
        j.set_row_weights(weights);
        j.add(0, 0, 1.5);
        j.add_row_run_shared((0, 1), data, 1..4, -2.0);
        j.add_col_run_shared((1, 0), data, 1..4, 3.0);
        j.add_row_run((3, 0), [0.125, 0.25].into_iter(), false);
        j.add_col_run_shared((1, 3), data, 0..3, -1.0);
        if stored {
            // The same values, stored: another pattern.
            j.add_row_run((3, 0), data[3..5].iter().map(|q| 0.5 * q), true);
        } else {
            j.add_row_run_shared((3, 0), data, 3..5, 0.5);
        }
        j.add(2, 1, 7.0);
        j.add_rank_one([(0, 1.0), (2, -2.0)], [(1, 0.5), (3, 4.0)]);
    }

    #[test]
    fn the_walk_yields_every_value_with_and_without_a_map_and_sourced_runs_store_none() {
        let data: Arc<[f64]> = vec![0.5, 2.0, -1.0, 3.0, 4.0].into();
        let weights = [1.0, 0.5, 2.0, 0.25];
        let triplets = walked_triplets(&data, &weights);
        for map in [None, Some(vec![0, 1, usize::MAX, 2])] {
            let (mut j, n) = with_map(&map);
            let solved = |i: usize| match &map {
                None => i as u32,
                Some(m) => u32::try_from(m[i]).unwrap_or(DROPPED),
            };
            j.begin(n, true);
            walked_runs(&mut j, &data, &weights, false);
            assert!(j.finish().unwrap());
            // Values written again (not recorded) fit the pattern.
            j.begin(n, false);
            walked_runs(&mut j, &data, &weights, false);
            assert_eq!(j.finish(), Ok(false), "{map:?}");
            // Every entry, dropped ones included, in emission order with its value's bits.
            let mut walked = Vec::new();
            j.for_each_entry(true, |k, r, c, v| walked.push((k, r, c, v.to_bits())));
            let want: Vec<_> = (triplets.iter().enumerate())
                .map(|(k, &(r, c, v))| (k, solved(r), solved(c), v.to_bits()))
                .collect();
            assert_eq!(walked, want, "{map:?}");
            assert_eq!(j.nnz(), triplets.len());
            // Sourced runs store no values: all four without the map (12 entries); under it
            // only the last row run stays a run (the others scatter and are stored).
            let sourced = if map.is_none() { 3 + 3 + 3 + 2 } else { 2 };
            assert_eq!(j.values.len(), triplets.len() - sourced, "{map:?}");
            // The dense matrix: the triplets summed in emission order, and the rank-one term.
            let mut a = vec![vec![0.0; n]; n];
            for &(r, c, v) in &triplets {
                if let (Some(r), Some(c)) = (map_kept(solved(r)), map_kept(solved(c))) {
                    a[r][c] += v;
                }
            }
            for (r, u) in [(0, 1.0), (2, -2.0)] {
                for (c, v) in [(1, 0.5), (3, 4.0)] {
                    if let (Some(r), Some(c)) = (map_kept(solved(r)), map_kept(solved(c))) {
                        a[r][c] += u * v;
                    }
                }
            }
            assert_eq!(j.to_dense(), a, "{map:?}");
            if map.is_none() {
                // Row 3: 3·3·0.25 + 0.125 + 0.5·3 in column 0, 0.25 + 0.5·4 in column 1.
                assert_eq!(a[3][..2], [3.875, 2.25]);
            }
            // The products, which read the sources themselves, agree with it.
            assert_products_agree(&j, &a, &format!("{map:?}"));
            // The same values with the last run stored instead of sourced: a new pattern
            // wherever it was sourced, and the walk is unchanged.
            j.begin(n, true);
            walked_runs(&mut j, &data, &weights, true);
            assert_eq!(j.finish(), Ok(true), "{map:?}");
            let mut again = Vec::new();
            j.for_each_entry(true, |k, r, c, v| again.push((k, r, c, v.to_bits())));
            assert_eq!(again, want, "{map:?}");
            assert_eq!(j.values.len(), triplets.len() - sourced + 2, "{map:?}");
        }
    }

    fn map_kept(i: u32) -> Option<usize> {
        (i != DROPPED).then_some(i as usize)
    }

    #[test]
    fn a_sourced_col_run_transposed_has_the_bits_of_its_values_dot() {
        // 21 entries: two chunks of eight and a tail, as `dot` sums them.
        let data: Arc<[f64]> = (0..21).map(|i| 0.1 + i as f64 / 3.0).collect();
        let weights: Vec<f64> = (0..22).map(|i| 1.0 + (i % 5) as f64 / 7.0).collect();
        let mut j = Jacobian::new(22);
        j.begin(22, true);
        j.set_row_weights(&weights);
        j.add_col_run_shared((1, 0), &data, 0..21, -0.3);
        j.finish().unwrap();
        assert!(j.values.is_empty());
        let w: Vec<f64> = (0..22).map(|i| (i as f64).sin()).collect();
        let mut y = vec![0.0; 22];
        j.tr_mul_add(&w, &mut y);
        let values: Vec<f64> = (0..21).map(|i| -0.3 * data[i] * weights[1 + i]).collect();
        assert_eq!(y[0].to_bits(), dot(&values, &w[1..22]).to_bits());
    }

    #[test]
    fn sourced_runs_row_maxima_are_those_of_their_finite_values() {
        // Runs of 21 (two lanes' chunks and a tail) whose largest |value| sits in a chunk, in
        // the tail, or is infinite (not counted).
        let mut data: Vec<f64> = (0..21).map(|i| (i as f64 - 7.5) / 4.0).collect();
        data[3] = -9.0;
        let mut other = data.clone();
        other[19] = 12.0;
        other[11] = f64::INFINITY;
        let (data, other): (Arc<[f64]>, Arc<[f64]>) = (data.into(), other.into());
        let weights: Vec<f64> = (0..22).map(|i| 0.5 + (i % 3) as f64).collect();
        let mut j = Jacobian::new(22);
        j.begin(22, true);
        j.set_row_weights(&weights);
        j.add_row_run_shared((0, 1), &data, 0..21, -0.5);
        j.add_row_run_shared((21, 1), &other, 0..21, 2.0);
        j.add_col_run_shared((1, 0), &other, 0..21, 1.5);
        j.finish().unwrap();
        let mut m = vec![0.0; 22];
        j.row_max_abs(&mut m);
        let mut want = vec![0.0f64; 22];
        j.for_each_entry(true, |_, r, _, v| {
            if v.is_finite() {
                want[r as usize] = want[r as usize].max(v.abs());
            }
        });
        assert_eq!(m, want);
        assert_eq!((m[0], m[21]), (4.5, 24.0));
    }

    #[test]
    fn runs_store_values_only_and_their_length_is_part_of_the_pattern() {
        let record = |j: &mut Jacobian, len: usize| {
            j.begin(6, true);
            j.add(5, 0, 1.0);
            j.add_row_run((1, 0), (0..len).map(|i| i as f64), false);
            j.add_col_run((0, 5), (0..len).map(|i| 10.0 + i as f64), false);
            j.finish().unwrap()
        };
        let mut j = Jacobian::new(6);
        assert!(record(&mut j, 4));
        // Two runs of four entries with no indices, one scattered entry with its own.
        assert_eq!((j.nnz(), j.run_entries()), (9, 8));
        assert_eq!((j.rows.len(), j.cols.len()), (1, 1));
        assert_eq!(j.values.len(), 9);
        let mut entries = Vec::new();
        j.for_each_entry(true, |k, r, c, v| entries.push((k, r, c, v)));
        assert_eq!(
            entries[..3],
            [(0, 5, 0, 1.0), (1, 1, 0, 0.0), (2, 1, 1, 1.0)]
        );
        assert_eq!(entries[5..7], [(5, 0, 5, 10.0), (6, 1, 5, 11.0)]);
        let mut scattered = Vec::new();
        j.for_each_entry(false, |k, r, c, v| scattered.push((k, r, c, v)));
        assert_eq!(scattered, [(0, 5, 0, 1.0)]);
        assert!(!record(&mut j, 4));
        // The same segments with other lengths: a new pattern.
        assert!(record(&mut j, 3));
        assert_eq!(j.to_dense()[1], vec![0.0, 1.0, 2.0, 0.0, 0.0, 11.0]);
    }

    #[test]
    fn a_changed_pattern_is_detected() {
        let mut j = Jacobian::new(3);
        j.begin(3, true);
        emit(&mut j, 1.0);
        j.finish().unwrap();
        // One entry fewer when writing values: refused.
        j.begin(3, false);
        j.add(0, 0, 1.0);
        assert_eq!(j.finish(), Err(PatternChanged));
        // A different entry when recording: a changed pattern.
        j.begin(3, true);
        j.add(2, 2, 1.0);
        assert_eq!(j.finish(), Ok(true));
        let mut entries = Vec::new();
        j.for_each_entry(true, |k, r, c, v| entries.push((k, r, c, v)));
        assert_eq!(entries, [(0, 2, 2, 1.0)]);
        assert_eq!(j.nnz(), 1);
    }

    #[test]
    fn a_map_drops_fixed_variables() {
        let mut j = Jacobian::new(3);
        // Variable 1 fixed: problem index 2 becomes solved index 1.
        j.set_map(2, &[0, usize::MAX, 1]);
        j.begin(2, true);
        emit(&mut j, 1.0);
        assert_eq!(j.finish(), Ok(true));
        let a = j.to_dense();
        assert_eq!(a, vec![vec![3.0, 0.0], vec![2.0, 3.0]]);
        // Values cannot be placed after the map changes until recorded again.
        j.set_map(3, &[0, 1, 2]);
        j.begin(3, false);
        emit(&mut j, 1.0);
        assert_eq!(j.finish(), Err(PatternChanged));
    }
}
