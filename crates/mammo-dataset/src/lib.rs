//! The dataset between mammo's stages, typed: the manifest every stage after preprocessing
//! reads and writes ([`ManifestRow`]: label, status and synthetic fold parsed once, here),
//! the one label parser for every RSNA spelling ([`parse_label`]), ids that may name files
//! ([`check_path_id`]), where a stored image's points land in its processed PNG
//! ([`SourceMap`]), and the labelled items with their cross-validation folds ([`Dataset`],
//! [`assign_folds`]), and the ground-truth lesion boxes of `lesions.csv` ([`LesionBox`]).
//!
//! No burn and no image codecs: a crate that only needs the table (the GAN, the explainer)
//! does not pull in the DICOM decoders.

mod error;
mod ids;
mod items;
mod label;
mod lesions;
mod manifest;
mod mapping;

pub use error::{DatasetError, RowError};
pub use ids::{PathIdError, check_path_id};
pub use items::{Dataset, Item, Split, assign_folds};
pub use label::{LabelError, label_text, parse_label};
pub use lesions::{
    LESION_CSV_COLUMNS, LesionBox, LesionKind, PHANTOM_LESION_COLUMNS, lesion_boxes_by_image,
    read_lesions_csv, read_lesions_from, write_lesions_csv,
};
pub use manifest::{ManifestRow, Status, read_manifest, read_manifest_from, write_manifest};
pub use mapping::SourceMap;
