//! The one error type of this crate.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GanError {
    /// Another process is writing the run folder.
    #[error(transparent)]
    Locked(#[from] mammo_image::LockError),
    #[error(transparent)]
    File(#[from] mammo_io::FileError),
    /// A manifest that cannot be read or written.
    #[error(transparent)]
    Dataset(#[from] mammo_dataset::DatasetError),
    #[error("invalid GAN config: {0}")]
    Config(String),
    /// A file or folder operation that failed; the cause stays typed.
    #[error("cannot {action} {}: {cause}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        cause: mammo_io::Cause,
    },
    #[error("{}: {reason}", path.display())]
    Data { path: PathBuf, reason: String },
    /// A real image that could not be read.
    #[error("{}: {cause}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        cause: mammo_image::PngError,
    },
    #[error("GAN run {}: {reason}", run.display())]
    Run { run: PathBuf, reason: String },
    #[error(transparent)]
    Model(#[from] mammo_models::ModelError),
    #[error(transparent)]
    Inception(#[from] mammo_inception::InceptionError),
    #[error(transparent)]
    Fid(#[from] mammo_fid::FidError),
    #[error("training diverged: {0}")]
    Diverged(String),
}

pub type Result<T, E = GanError> = std::result::Result<T, E>;

impl GanError {
    pub fn io(action: &'static str, path: &Path, cause: impl Into<mammo_io::Cause>) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            cause: cause.into(),
        }
    }
}
