//! What can be wrong with a dataset file. Messages are one line, cause included, as every
//! mammo crate words them; the cause stays typed for callers that look inside.

use std::path::PathBuf;

use crate::ids::PathIdError;

/// A manifest (or the items made from it) that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened, read or written.
    #[error(transparent)]
    File(#[from] mammo_io::FileError),
    /// Row `row` (1-based, the header is row 1) is not a valid row.
    #[error("{}: row {row}: {cause}", path.display())]
    Row {
        path: PathBuf,
        row: usize,
        #[source]
        cause: RowError,
    },
    /// A column the file must have is not in its header.
    #[error("{}: no {column} column (columns: {columns})", path.display())]
    MissingColumn {
        path: PathBuf,
        column: &'static str,
        /// The header as found, comma-joined.
        columns: String,
    },
    /// No row has an image to train on.
    #[error("{}: no usable rows", path.display())]
    Empty { path: PathBuf },
    /// The labelled images cannot be spread over the requested folds.
    #[error("cannot make {k} folds: {cause}")]
    Folds {
        k: usize,
        #[source]
        cause: mammo_eval::FoldError,
    },
}

/// Why one manifest row is not valid.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// A value of the wrong form (a label that is not one, a number that is not one, a
    /// missing column), with the column it stands in when known.
    #[error("{}", csv_message(column.as_deref(), error))]
    Csv {
        column: Option<String>,
        #[source]
        error: csv::Error,
    },
    #[error(transparent)]
    Id(#[from] PathIdError),
    /// A coordinate (or other number) that is not a finite number.
    #[error("{column} {value:?} is not a number")]
    NotANumber { column: &'static str, value: String },
    #[error("path {path:?} holds a NUL byte")]
    PathNul { path: String },
    #[error(
        "path {path:?} leaves the manifest's folder ('..'); give it relative to the folder, or \
         absolute"
    )]
    PathLeaves { path: String },
    #[error("image {image_id} has synthetic_fold {fold} but is not synthetic")]
    FoldNotSynthetic { image_id: String, fold: usize },
    /// Training needs a label on every usable row.
    #[error("image {image_id} has no label; training needs 0 or 1")]
    Unlabelled { image_id: String },
    #[error(
        "image {image_id} is {}x{} but earlier images are {}x{}; train on one size (one manifest \
         per size)",
        size[1], size[0], first[1], first[0]
    )]
    Size {
        image_id: String,
        /// `[height, width]`.
        size: [usize; 2],
        first: [usize; 2],
    },
}

impl RowError {
    /// A CSV record that did not deserialize, its column named from `header`.
    pub(crate) fn from_csv(error: csv::Error, header: &csv::StringRecord) -> Self {
        let column = match error.kind() {
            csv::ErrorKind::Deserialize { err, .. } => err
                .field()
                .and_then(|i| header.get(i as usize))
                .map(str::to_string),
            _ => None,
        };
        RowError::Csv { column, error }
    }
}

/// `column label: "2" is not a label ...` rather than csv's `CSV deserialize error: record 1
/// (line: 2, byte: 391): field 4: ...`: the file and row are already named.
fn csv_message(column: Option<&str>, error: &csv::Error) -> String {
    match (column, error.kind()) {
        (Some(c), csv::ErrorKind::Deserialize { err, .. }) => format!("column {c}: {}", err.kind()),
        (None, csv::ErrorKind::Deserialize { err, .. }) => err.kind().to_string(),
        _ => error.to_string(),
    }
}
