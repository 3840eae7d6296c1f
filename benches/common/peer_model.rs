//! The peers' reference solutions (`*.solution.json`), read for the benches and tests; the
//! economy itself is `tokencge::generate` (re-exported here). The peers' JSON files are read
//! with serde_json, whose `float_roundtrip` feature (enabled in Cargo.toml) makes float parsing
//! correctly rounded: without it the reference value 0.9177941680033793 reads as
//! 0.9177941680033792, and these comparisons want the exact numbers.
#![allow(dead_code)]

use std::fmt::Write as _;

pub use tokencge::generate::{generate, num, Instance};

/// A reference solution of the peers (`*.solution.json`, `*.solution_notax.json`).
#[derive(Debug, Clone)]
pub struct Reference {
    pub scenario: String,
    pub y: Vec<f64>,
    pub p: Vec<f64>,
    pub pk: f64,
    pub pl: f64,
    pub m: Vec<f64>,
}

impl Reference {
    /// Parses a solution file (numbers read with Rust's correctly rounded parser).
    pub fn from_json(text: &str) -> Result<Reference, String> {
        Ok(Reference {
            scenario: json_string(text, "scenario").unwrap_or_default(),
            y: json_vec(text, "Y")?,
            p: json_vec(text, "P")?,
            pk: json_number(text, "PK")?,
            pl: json_number(text, "PL")?,
            m: json_vec(text, "M")?,
        })
    }

    /// `[[targets]]` entries (for `tokencge check`) stating this solution to `tolerance`.
    pub fn targets_toml(&self, scenario: &str, tolerance: f64) -> String {
        let mut s = String::new();
        let mut add = |expr: String, value: f64| {
            let _ = writeln!(
                s,
                "\n[[targets]]\nname = \"GAMS/PATH {expr} ({scenario})\"\nscenario = \"{scenario}\"\nexpr = \"{expr}\"\nvalue = {}\ntolerance = {}",
                num(value),
                num(tolerance)
            );
        };
        for (j, &y) in self.y.iter().enumerate() {
            add(Instance::sector_name(j), y);
        }
        for (i, &p) in self.p.iter().enumerate() {
            add(Instance::good_name(i), p);
        }
        add("PK".into(), self.pk);
        add("PL".into(), self.pl);
        for (k, &m) in self.m.iter().enumerate() {
            add(Instance::household_name(k), m);
        }
        s
    }
}

// ---- the peers' JSON files, read with serde_json (`float_roundtrip`: correctly rounded).

/// Field `key` of a JSON object text.
fn json_field(text: &str, key: &str) -> Result<serde_json::Value, String> {
    let mut doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    doc.get_mut(key)
        .map(serde_json::Value::take)
        .ok_or_else(|| format!("field {key} missing"))
}

fn as_number(v: &serde_json::Value, key: &str) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("{key}: {v} is not a number"))
}

fn as_list(v: &serde_json::Value, key: &str) -> Result<Vec<f64>, String> {
    v.as_array()
        .ok_or_else(|| format!("{key}: not a list"))?
        .iter()
        .map(|x| as_number(x, key))
        .collect()
}

pub fn json_number(text: &str, key: &str) -> Result<f64, String> {
    as_number(&json_field(text, key)?, key)
}

pub fn json_string(text: &str, key: &str) -> Result<String, String> {
    match json_field(text, key)? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(format!("{key}: not a string")),
    }
}

/// A list of numbers.
pub fn json_vec(text: &str, key: &str) -> Result<Vec<f64>, String> {
    as_list(&json_field(text, key)?, key)
}

/// A list of lists of numbers (row-major).
pub fn json_matrix(text: &str, key: &str) -> Result<Vec<Vec<f64>>, String> {
    json_field(text, key)?
        .as_array()
        .ok_or_else(|| format!("{key}: not a list"))?
        .iter()
        .map(|row| as_list(row, key))
        .collect()
}
