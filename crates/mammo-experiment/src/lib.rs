//! The paper's Algorithm 1 end to end: for every resolution, data stage and model, train
//! cross-validated classifiers, explain their positive validation images with CAM and a
//! centered box, and collect Table 2 with its figures into one offline `report.html`.
//!
//! ```text
//! EXP/experiment.json                      resolved config, versions, data digest
//! EXP/data/                                phantom set (when no --data was given)
//! EXP/steps/<kind>-<name>-<key>/           one folder per step, named by a digest of
//!                                          everything it depends on; `done.json` marks it done
//! EXP/report/report.html, table2_<res>.{md,csv,html}, figures/
//! ```
//!
//! A step whose folder has `done.json` is skipped; an unfinished one resumes (preprocessing
//! skips written PNGs, training resumes from its last finished epoch). Changing a setting
//! changes the digest of the steps it reaches, so they run again in new folders and nothing
//! stale is reused. The digest also covers the code that computes the step ([`code`]): a new
//! build that changed, say, the trainer reruns the training steps (and what follows them) but
//! reuses the preprocessing; `reuse_stale` keeps results of older builds on purpose.

mod cache;
pub mod code;
pub mod config;
pub mod explain;
pub mod gan;
pub mod report;
mod steps;
pub mod weights;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use config::{ConfigError, ExperimentConfig, Stage};
pub use steps::{ExperimentOptions, ExperimentSummary, PlannedStep, plan, run_experiment};
pub use weights::{ModelWeights, find_in_hub_cache, resolve_weights};

#[derive(Debug, Error)]
pub enum ExperimentError {
    /// Another process is writing the output folder.
    #[error(transparent)]
    Locked(#[from] mammo_image::LockError),
    /// An experiment file that cannot be read, parsed or used.
    #[error("{}: {cause}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        cause: Cause,
    },
    /// Settings no run can satisfy.
    #[error(transparent)]
    Settings(#[from] config::ConfigError),
    /// Settings or inputs no run can satisfy.
    #[error("{0}")]
    Invalid(String),
    /// A setting or input (`what`) that cannot be used, and why.
    #[error("{what}: {cause}")]
    InvalidField {
        what: String,
        #[source]
        cause: Cause,
    },
    /// A step that failed; its cause stays typed (a training, GAN or dataset error).
    #[error("{step}: {cause}")]
    Step {
        step: String,
        #[source]
        cause: Cause,
    },
    /// A file or folder operation that failed; the cause stays typed.
    #[error("{path}: cannot {action}: {cause}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        cause: Cause,
    },
    #[error(transparent)]
    File(#[from] mammo_io::FileError),
    #[error(transparent)]
    Preprocess(#[from] mammo_preprocess::PreprocessError),
    /// A manifest or `lesions.csv` that cannot be read.
    #[error(transparent)]
    Dataset(#[from] mammo_dataset::DatasetError),
}

/// The cause of a failed step, kept typed (mammo-io's one cause type).
pub use mammo_io::Cause;

impl ExperimentError {
    /// `what` cannot be used because of `cause`.
    pub fn invalid(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Self::InvalidField {
            what: what.into(),
            cause: cause.into(),
        }
    }

    /// Step `step` failed because of `cause` (an error, or a message).
    pub fn step(step: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Self::Step {
            step: step.into(),
            cause: cause.into(),
        }
    }
}

pub(crate) fn io_err(
    action: &'static str,
    path: &Path,
    cause: impl Into<Cause>,
) -> ExperimentError {
    ExperimentError::Io {
        path: path.into(),
        action,
        cause: cause.into(),
    }
}
