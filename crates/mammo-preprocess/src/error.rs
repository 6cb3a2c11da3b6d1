use std::path::PathBuf;

/// Errors that stop a batch (per-image failures are reported, not raised).
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("cannot read {}: {reason}", path.display())]
    Csv { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("{} was made with other settings ({reason}); use another --out or delete it", path.display())]
    SettingsChanged { path: PathBuf, reason: String },
    #[error("invalid settings: {0}")]
    Config(String),
    /// Another process is writing the output folder.
    #[error(transparent)]
    Locked(#[from] mammo_image::LockError),
}

pub(crate) fn io_err(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> PreprocessError {
    PreprocessError::Io {
        path: path.into(),
        reason: e.to_string(),
    }
}
