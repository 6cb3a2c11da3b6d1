//! Errors of training, evaluation and prediction. Every variant names the file or setting at
//! fault.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrainError {
    #[error("invalid training config: {0}")]
    Config(String),
    /// Another process is writing the run folder.
    #[error(transparent)]
    Locked(#[from] mammo_image::LockError),
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{path}: cannot read image: {reason}")]
    Image { path: PathBuf, reason: String },
    /// A DICOM file that the preprocessing pipeline could not turn into a model input.
    #[error("{path}: cannot read image: {cause}")]
    Process {
        path: PathBuf,
        cause: mammo_preprocess::ProcessError,
    },
    /// A file or folder operation that failed; the cause stays typed.
    #[error("{path}: cannot {action}: {cause}")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: Cause,
    },
    #[error(
        "{run}: this run folder was started with a different {what}; use a new --out folder or \
         the original settings\n  saved: {saved}\n  now:   {now}"
    )]
    RunMismatch {
        run: PathBuf,
        what: &'static str,
        saved: String,
        now: String,
    },
    #[error("{path}: not a training run folder ({reason})")]
    NotARun { path: PathBuf, reason: String },
    /// The loss became NaN or infinite.
    #[error(
        "training diverged: loss {loss} at fold {fold} epoch {epoch} step {step}; lower lr (now \
         {lr:.2e})"
    )]
    Diverged {
        fold: usize,
        epoch: usize,
        step: usize,
        loss: f32,
        lr: f64,
    },
    #[error(transparent)]
    Model(#[from] mammo_models::ModelError),
    #[error(transparent)]
    File(#[from] mammo_io::FileError),
    /// A manifest or its items that cannot be used.
    #[error(transparent)]
    Dataset(#[from] mammo_dataset::DatasetError),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// The cause of a failed file operation: an `std::io::Error`, a parse error, or a message.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
    cause: impl Into<Cause>,
) -> TrainError {
    TrainError::Io {
        action,
        path: path.to_path_buf(),
        cause: cause.into(),
    }
}
