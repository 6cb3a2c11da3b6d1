//! Batch preprocessing of an RSNA-layout screening dataset: every DICOM becomes a PNG per
//! requested size plus a manifest row, in parallel, resumably, with failures reported and
//! never fatal to the batch.
//!
//! Layout read: `train.csv` (RSNA Screening Mammography columns) and
//! `train_images/<patient_id>/<image_id>.dcm`. Layout written under `OUT/`:
//!
//! ```text
//! OUT/preprocess.json            resolved settings and versions
//! OUT/<HxW>/manifest.csv         one row per image (ok and failed)
//! OUT/<HxW>/<patient>/<image>.png
//! OUT/failures.csv               file, reason
//! OUT/journal.jsonl              finished images (resume state)
//! ```
//!
//! The competition's test side (`test.csv`, `test_images/`) is read by [`RsnaTestSet`].

mod batch;
pub mod datasets;
mod error;
mod pipeline;
mod rsna;
mod rsna_test;

pub use batch::{
    BatchOptions, BatchReport, DatasetBatchOptions, run_batch, run_dataset_batch,
    run_loaded_dataset, saved_pipeline,
};
pub use datasets::{Dataset, DatasetKind, ImageRecord, load_dataset};
pub use error::{InputPathError, PreprocessError};
pub use pipeline::{
    FlipTo, OutputSize, PipelineConfig, ProcessError, Processed, SettingsError, SizedOutput,
    choose_reduce, process_dicom, process_image,
};
pub use rsna::{KNOWN_VIEWS, RsnaRow, RsnaTable, read_rsna_csv, read_rsna_csv_from};
pub use rsna_test::{RsnaTestRow, RsnaTestSet, prediction_id, read_rsna_test_csv_from};
