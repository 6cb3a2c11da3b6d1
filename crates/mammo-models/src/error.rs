//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong building, loading or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The name is not in the registry ([`crate::MODELS`]).
    #[error("unknown model {name:?}; known models: {}", known.join(", "))]
    UnknownModel {
        name: String,
        known: Vec<&'static str>,
    },

    /// A [`crate::ModelConfig`] value the architecture cannot be built with.
    #[error("invalid model config for {model}: {reason}")]
    InvalidConfig { model: String, reason: String },

    /// Reading or writing a safetensors file failed below the level of tensor names.
    #[error("cannot {action} {}: {cause}", path.display())]
    Store {
        action: &'static str,
        path: PathBuf,
        #[source]
        cause: mammo_io::Cause,
    },

    /// A model config that is not valid JSON for [`crate::ModelConfig`].
    #[error("invalid model config for <json>: {0}")]
    ConfigJson(#[source] serde_json::Error),

    /// The file holds tensors the model has no parameter for.
    #[error(
        "{}: {} tensor(s) not in model {model}: {}",
        path.display(), keys.len(), keys.join(", ")
    )]
    UnexpectedKeys {
        path: PathBuf,
        model: String,
        keys: Vec<String>,
    },

    /// The model has parameters the file does not provide.
    #[error(
        "{}: {} parameter(s) of model {model} missing from the file: {}",
        path.display(), keys.len(), keys.join(", ")
    )]
    MissingKeys {
        path: PathBuf,
        model: String,
        keys: Vec<String>,
    },

    /// A tensor exists under the right name but with the wrong shape.
    #[error(
        "{}: tensor {key} has shape {found:?}, model {model} expects {expected:?}",
        path.display()
    )]
    ShapeMismatch {
        path: PathBuf,
        model: String,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// The first convolution's input channels cannot be adapted (timm `adapt_input_conv`).
    #[error("{}: cannot adapt {key} from {from} to {to} input channel(s)", path.display())]
    InputConvAdaptation {
        path: PathBuf,
        key: String,
        from: usize,
        to: usize,
    },
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
