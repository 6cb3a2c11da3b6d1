//! Cross-validated training and evaluation of mammography classifiers (the paper's protocol:
//! stratified folds, positives oversampled 5:1, horizontal flips, batch 64, 3 epochs, lr
//! 1e-4 with a one-cycle schedule), on any burn device, resumable per epoch.
//!
//! `mammo train` is [`train`]; `mammo eval` is [`evaluate_run`] / [`evaluate_manifest`];
//! `mammo predict` is [`predict_images`], and with `--rsna-test` [`predict_rsna_test`] and
//! [`Submission`].

pub mod bench;
pub mod config;
pub mod data;
mod error;
mod infer;
pub mod prefetch;
pub mod report;
pub mod run;
pub mod schedule;
pub mod submission;
mod trainer;

pub use config::{OptimizerKind, Schedule, Select, Split, TrainConfig};
pub use error::{Result, SettingsError, TrainError};
pub use infer::{
    Ensemble, ImagePrediction, PreparedDicom, dicom_pipeline, evaluate_manifest, evaluate_run,
    load_input, predict_images, predictions_csv, prepare_dicom,
};
pub use report::{Metrics, Prediction, RunMetrics};
pub use run::Run;
pub use submission::{Submission, TestImage, predict_rsna_test};
pub use trainer::{
    EpochRecord, FoldState, TrainOptions, TrainReport, create_initialised, fold_finished,
    load_state, train,
};
