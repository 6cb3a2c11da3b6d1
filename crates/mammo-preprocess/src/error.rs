use std::path::PathBuf;

/// Errors that stop a batch (per-image failures are reported, not raised).
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// A table (CSV) that cannot be read or used.
    #[error("cannot read {}: {cause}", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        cause: Cause,
    },
    /// Row `row` of a table (1-based, the header is row 1) that cannot be used.
    #[error("cannot read {}: row {row}: {cause}", path.display())]
    Row {
        path: PathBuf,
        row: usize,
        #[source]
        cause: Cause,
    },
    /// A file or folder operation that failed; the cause stays typed.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        cause: Cause,
    },
    #[error(
        "{} was made with other settings ({reason}); use another --out or delete it",
        path.display()
    )]
    SettingsChanged { path: PathBuf, reason: String },
    #[error("invalid settings: {0}")]
    Settings(#[from] crate::pipeline::SettingsError),
    #[error("cannot start the worker threads: {0}")]
    Threads(#[source] rayon::ThreadPoolBuildError),
    /// A dataset loader produced ids that break its own rules (a loader bug, said plainly).
    #[error("{kind} loader: {cause}")]
    Loader {
        kind: crate::datasets::DatasetKind,
        #[source]
        cause: Cause,
    },
    /// A manifest or `lesions.csv` that cannot be read or written.
    #[error(transparent)]
    Dataset(#[from] mammo_dataset::DatasetError),
    /// Another process is writing the output folder.
    #[error(transparent)]
    Locked(#[from] mammo_image::LockError),
}

/// Why a table, a row or a file could not be used: a parser's or the system's error kept
/// typed, or a message.
pub(crate) use mammo_io::Cause;

pub(crate) fn io_err(path: impl Into<PathBuf>, cause: impl Into<Cause>) -> PreprocessError {
    PreprocessError::Io {
        path: path.into(),
        cause: cause.into(),
    }
}

/// An input file named by a table (a CSV row) that cannot be used: it does not exist, or it
/// resolves (symbolic links followed) outside the folder it must be in.
#[derive(Debug, thiserror::Error)]
pub enum InputPathError {
    #[error("{}: no such file", file.display())]
    NotFound { file: PathBuf },
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: resolves to {}, outside {root_name} {}",
        file.display(), real.display(), root.display()
    )]
    Outside {
        file: PathBuf,
        /// Where it resolves to.
        real: PathBuf,
        /// The folder as the user knows it (a flag, a folder name).
        root_name: &'static str,
        root: PathBuf,
    },
}
