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
    #[error("{path}: cannot read image: {cause}")]
    Image {
        path: PathBuf,
        #[source]
        cause: Cause,
    },
    /// A DICOM file that the preprocessing pipeline could not turn into a model input.
    #[error("{path}: cannot read image: {cause}")]
    Process {
        path: PathBuf,
        #[source]
        cause: mammo_preprocess::ProcessError,
    },
    /// A file or folder operation that failed; the cause stays typed.
    #[error("{path}: cannot {action}: {cause}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
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
    /// A run whose DICOM preprocessing settings cannot be had.
    #[error("{}: not a training run folder ({cause})", path.display())]
    NoSettings {
        path: PathBuf,
        #[source]
        cause: SettingsError,
    },
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
    /// An input named by a table that does not exist or lies outside its folder.
    #[error(transparent)]
    Input(#[from] mammo_preprocess::InputPathError),
    /// A manifest or its items that cannot be used.
    #[error(transparent)]
    Dataset(#[from] mammo_dataset::DatasetError),
}

/// Why a run's DICOM preprocessing settings (the training set's `preprocess.json`) cannot be
/// had: DICOM inputs cannot then be prepared as the model's training images were.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// The run's manifest is not inside a `mammo preprocess` output folder.
    #[error("cannot locate the training set's preprocess.json")]
    NotLocated,
    #[error("need the training set's preprocessing settings: {0}")]
    Unreadable(#[source] mammo_preprocess::PreprocessError),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// The cause of a failed file operation: an `std::io::Error`, a parse error, or a message.
pub use mammo_io::Cause;

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
