//! The one error type of this crate.

use std::path::PathBuf;

/// At most this many keys are named in a message; the rest are counted.
const KEYS_SHOWN: usize = 8;

/// `a, b, c` or `a, b, ... and 12 more`.
fn key_list(keys: &[String]) -> String {
    let shown = keys[..keys.len().min(KEYS_SHOWN)].join(", ");
    match keys.len().saturating_sub(KEYS_SHOWN) {
        0 => shown,
        more => format!("{shown}, ... and {more} more"),
    }
}

/// Everything that can go wrong loading FID Inception weights.
#[derive(Debug, thiserror::Error)]
pub enum InceptionError {
    /// The file could not be opened or parsed as safetensors.
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The file holds tensors the network has no parameter for.
    #[error(
        "{}: {} tensor(s) not in the FID Inception: {}",
        path.display(), keys.len(), key_list(keys)
    )]
    UnexpectedKeys { path: PathBuf, keys: Vec<String> },

    /// The network has parameters the file does not provide.
    #[error(
        "{}: {} FID Inception parameter(s) missing from the file: {}",
        path.display(), keys.len(), key_list(keys)
    )]
    MissingKeys { path: PathBuf, keys: Vec<String> },

    /// A tensor exists under the right name but with the wrong shape.
    #[error(
        "{}: tensor {key} has shape {found:?}, the FID Inception expects {expected:?}",
        path.display()
    )]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// burn refused a tensor while copying it into the network (e.g. a non-float dtype).
    #[error("cannot load {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
}
