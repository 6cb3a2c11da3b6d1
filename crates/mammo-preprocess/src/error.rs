use std::path::PathBuf;

/// Errors that stop a batch (per-image failures are reported, not raised).
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("cannot read {}: {reason}", path.display())]
    Csv { path: PathBuf, reason: String },
    /// A file or folder operation that failed; the cause stays typed.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{} was made with other settings ({reason}); use another --out or delete it", path.display())]
    SettingsChanged { path: PathBuf, reason: String },
    #[error("invalid settings: {0}")]
    Config(String),
    /// A manifest or `lesions.csv` that cannot be read or written.
    #[error(transparent)]
    Dataset(#[from] mammo_dataset::DatasetError),
    /// Another process is writing the output folder.
    #[error(transparent)]
    Locked(#[from] mammo_image::LockError),
}

pub(crate) fn io_err(
    path: impl Into<PathBuf>,
    cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> PreprocessError {
    PreprocessError::Io {
        path: path.into(),
        cause: cause.into(),
    }
}
