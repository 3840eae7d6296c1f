//! Parameter overrides given outside the model file: `--set NAME=VALUE` on the command line
//! (repeatable), and the values of a sensitivity draw. Each becomes an `(index, value)` pair
//! applied on top of a scenario's own `parameters` (later pairs win) before every derived
//! parameter is evaluated again (`Model::parameters_with`).
//!
//! A bad override is bad input: every one is reported at once, each naming the model file and
//! the argument, never a silently ignored name or a number read as zero.

use super::Model;

/// One rejected `--set` argument: the argument as given and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: --set {argument}: {message}")]
pub struct OverrideError {
    pub file: String,
    pub argument: String,
    pub message: String,
}

impl Model {
    /// Resolves `--set NAME=VALUE` arguments into `(parameter index, value)` pairs, in the order
    /// given (a later one for the same name wins when applied). Every bad argument is reported:
    /// a missing `=`, an unknown name (with the nearest declared names), a value that is not a
    /// finite number.
    pub fn resolve_overrides(
        &self,
        arguments: &[String],
    ) -> Result<Vec<(usize, f64)>, Vec<OverrideError>> {
        let mut pairs = Vec::new();
        let mut errors = Vec::new();
        for argument in arguments {
            match self.resolve_override(argument) {
                Ok(pair) => pairs.push(pair),
                Err(message) => errors.push(OverrideError {
                    file: self.path.display().to_string(),
                    argument: argument.clone(),
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(pairs)
        } else {
            Err(errors)
        }
    }

    fn resolve_override(&self, argument: &str) -> Result<(usize, f64), String> {
        let Some((name, value)) = argument.split_once('=') else {
            return Err("expected NAME=VALUE".into());
        };
        let (name, value) = (name.trim(), value.trim());
        let index = self.parameter_index(name).ok_or_else(|| {
            let near = self.nearest_parameters(name, 3);
            if near.is_empty() {
                format!("'{name}' is not a parameter of the model (it declares none)")
            } else {
                format!(
                    "'{name}' is not a parameter of the model (nearest: {})",
                    near.join(", ")
                )
            }
        })?;
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok((index, v)),
            _ => Err(format!("'{value}' is not a finite number")),
        }
    }

    /// The index of a declared parameter.
    pub fn parameter_index(&self, name: &str) -> Option<usize> {
        self.parameters.iter().position(|p| p.name == name)
    }

    /// Up to `k` declared parameter names closest to `name` (edit distance, then declaration
    /// order), for messages.
    pub fn nearest_parameters(&self, name: &str, k: usize) -> Vec<String> {
        let mut scored: Vec<(usize, usize)> = self
            .parameters
            .iter()
            .enumerate()
            .map(|(i, p)| (edit_distance(name, &p.name), i))
            .collect();
        scored.sort();
        scored
            .into_iter()
            .take(k)
            .map(|(_, i)| self.parameters[i].name.clone())
            .collect()
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("sigma", "sigma"), 0);
        assert_eq!(edit_distance("sigma", "sigm"), 1);
        assert_eq!(edit_distance("esub_kl", "esub_lk"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
