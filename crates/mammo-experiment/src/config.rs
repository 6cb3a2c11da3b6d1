//! The experiment's typed configuration (`configs/*.toml`), resolved and saved beside the
//! results as `experiment.json`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use mammo_train::TrainConfig;

use crate::ExperimentError;

/// A data stage of Algorithm 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// DICOM rendered and resized: no crop, no windowing (min-max of the stored values).
    Original,
    /// Cropped to the breast, windowed with the file's VOI, normalised, flipped to one side.
    Processed,
    /// Processed plus generated positives in the training folds.
    Augmented,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Original => "original",
            Stage::Processed => "processed",
            Stage::Augmented => "augmented",
        }
    }

    /// The paper's row label in Table 2.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Original => "Original dataset",
            Stage::Processed => "Processed dataset",
            Stage::Augmented => "Processed + synthetic positives",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "original" => Ok(Stage::Original),
            "processed" => Ok(Stage::Processed),
            "augmented" => Ok(Stage::Augmented),
            _ => Err(format!("stage {s:?} is not original, processed or augmented")),
        }
    }
}

/// `[experiment]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentSection {
    pub name: String,
    /// Square input sizes (the paper: 256 and 512).
    pub resolutions: Vec<u32>,
    pub stages: Vec<Stage>,
    /// timm model names.
    pub models: Vec<String>,
    /// Generated positives added to the training folds in the augmented stage (the paper: 1000).
    pub synthetic_positives: usize,
    /// Worker threads for data preparation (0 = all cores).
    pub jobs: usize,
}

impl Default for ExperimentSection {
    fn default() -> Self {
        Self {
            name: "experiment".into(),
            resolutions: vec![256, 512],
            stages: vec![Stage::Original, Stage::Processed, Stage::Augmented],
            models: vec!["resnet18".into(), "resnet34".into(), "resnet152".into(), "efficientnet_b0".into(), "maxvit_nano_rw_256".into()],
            synthetic_positives: 1000,
            jobs: 0,
        }
    }
}

/// `[phantom]`: the built-in data, used when no `--data` folder is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhantomSection {
    pub patients: usize,
    pub seed: u64,
    pub prevalence: f64,
    /// `small`, `rsna` or `WxH`.
    pub size: String,
    /// `low`, `medium`, `high` or `obvious`.
    pub conspicuity: String,
}

impl Default for PhantomSection {
    fn default() -> Self {
        Self { patients: 60, seed: 0, prevalence: 0.3, size: "small".into(), conspicuity: "obvious".into() }
    }
}

/// `[explain]`: CAM + centered box for the positives of each validation fold (the paper's
/// Figure 6), scored against known lesions when the data has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplainSection {
    /// cam, gradcam, gradcam++, layercam or hirescam.
    pub method: String,
    /// Side of the centered box as a fraction of the image width.
    pub box_fraction: f64,
    /// Positive validation images explained per run (over all folds), 0 = none.
    pub images: usize,
    /// Triptychs shown in the report per run.
    pub figures: usize,
}

impl Default for ExplainSection {
    fn default() -> Self {
        Self { method: "cam".into(), box_fraction: 0.2, images: 40, figures: 3 }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    pub experiment: ExperimentSection,
    pub phantom: PhantomSection,
    /// Training protocol shared by every model (`model` is set per run).
    pub train: TrainConfig,
    pub explain: ExplainSection,
}

impl ExperimentConfig {
    pub fn from_toml_file(path: &Path) -> Result<Self, ExperimentError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Config { path: path.into(), reason: e.to_string() })?;
        let cfg: Self = toml::from_str(&text).map_err(|e| ExperimentError::Config { path: path.into(), reason: e.to_string() })?;
        cfg.validate().map_err(|reason| ExperimentError::Config { path: path.into(), reason })?;
        Ok(cfg)
    }

    /// Values no run can satisfy, checked before any work starts.
    pub fn validate(&self) -> Result<(), String> {
        let e = &self.experiment;
        if e.resolutions.is_empty() || e.stages.is_empty() || e.models.is_empty() {
            return Err("experiment.resolutions, stages and models must each name at least one".into());
        }
        if let Some(r) = e.resolutions.iter().find(|&&r| !(16..=4096).contains(&r)) {
            return Err(format!("resolution {r} is outside 16..=4096"));
        }
        for m in &e.models {
            mammo_models::spec(m).map_err(|err| format!("model {m:?}: {err}"))?;
        }
        self.explain.method.parse::<mammo_explain::Method>().map_err(|err| format!("explain.method: {err}"))?;
        if !(0.0..=1.0).contains(&self.explain.box_fraction) || self.explain.box_fraction == 0.0 {
            return Err(format!("explain.box_fraction {} must be in (0, 1]", self.explain.box_fraction));
        }
        self.phantom.size.parse::<mammo_phantom::SizePreset>().map_err(|err| format!("phantom.size: {err}"))?;
        self.phantom.conspicuity.parse::<mammo_phantom::Conspicuity>().map_err(|err| format!("phantom.conspicuity: {err}"))?;
        let mut t = self.train.clone();
        t.model = e.models[0].clone();
        t.validate().map_err(|err| format!("train: {err}"))?;
        Ok(())
    }
}
