//! The experiment's typed configuration (`configs/*.toml`), resolved and saved beside the
//! results as `experiment.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use mammo_train::TrainConfig;

use crate::{Cause, ExperimentError};

/// A data stage of Algorithm 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// DICOM rendered and resized: no crop, no windowing (min-max of the stored values).
    Original,
    /// Cropped to the breast, windowed with the file's VOI, normalised, flipped to one side.
    Processed,
    /// Processed plus generated positives in the training folds (each fold's from a
    /// generator that never saw its validation images).
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
            _ => Err(format!(
                "stage {s:?} is not original, processed or augmented"
            )),
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
    /// Compute device for training, explanation and the GAN: `auto` (default), `flex`,
    /// `vulkan[:N]`, `cuda[:N]`. `--device` overrides it. Not part of any step's key: a step
    /// done on one device is reused on another (their results agree within the tolerances
    /// the vulkan parity tests state).
    pub device: mammo_models::DeviceSpec,
}

impl Default for ExperimentSection {
    fn default() -> Self {
        Self {
            name: "experiment".into(),
            resolutions: vec![256, 512],
            stages: vec![Stage::Original, Stage::Processed, Stage::Augmented],
            models: vec![
                "resnet18".into(),
                "resnet34".into(),
                "resnet152".into(),
                "efficientnet_b0".into(),
                "maxvit_nano_rw_256".into(),
            ],
            synthetic_positives: 1000,
            jobs: 0,
            device: mammo_models::DeviceSpec::Auto,
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
    /// Breast density mix: `rsna`, letters (`AB`) or weights `a,b,c,d`.
    pub density: String,
}

impl Default for PhantomSection {
    fn default() -> Self {
        Self {
            patients: 60,
            seed: 0,
            prevalence: 0.3,
            size: "small".into(),
            conspicuity: "obvious".into(),
            density: "rsna".into(),
        }
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
    /// Feature layer of the maps (e.g. `layer3`); unset: with lesion boxes, the layer where
    /// `method` points best on the explained images (the report says so), else the last.
    /// Every method at every layer is scored either way.
    pub layer: Option<String>,
}

impl Default for ExplainSection {
    fn default() -> Self {
        Self {
            method: "cam".into(),
            box_fraction: 0.2,
            images: 40,
            figures: 3,
            layer: None,
        }
    }
}

/// `[gan]`: the generator behind the augmented stage. Per resolution and per fold a GAN
/// learns the processed positives of that fold's training images only (no validation image
/// is ever seen by a generator): a 16 px stem, then super-resolution stages to 32 px, 256 px
/// (when the resolution is above it) and the resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GanSection {
    /// `cpu`, `gan-paper` or a GAN TOML file (as `mammo gan train --config`).
    pub config: String,
    /// Thousands of real images shown to the 16 px stem.
    pub stem_kimg: f64,
    /// ... and to each super-resolution stage.
    pub head_kimg: f64,
    /// Truncation psi when generating (1: none).
    pub truncation: f64,
}

impl Default for GanSection {
    fn default() -> Self {
        Self {
            config: "cpu".into(),
            stem_kimg: 10.0,
            head_kimg: 10.0,
            truncation: 1.0,
        }
    }
}

impl GanSection {
    /// Output resolutions of the generator stages that end at `res`.
    pub fn chain(res: u32) -> Vec<u32> {
        let mut c = vec![16];
        for r in [32, 256, res] {
            if r > *c.last().expect("non-empty") && r <= res {
                c.push(r);
            }
        }
        c
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
    pub gan: GanSection,
    /// `[weights]`: timm model name -> safetensors file of its pretrained weights (relative
    /// paths are relative to the experiment file). Models not named here are looked up in
    /// `--weights-dir`, else trained from scratch (see [`crate::weights`]).
    pub weights: BTreeMap<String, PathBuf>,
}

impl ExperimentConfig {
    pub fn from_toml_file(path: &Path) -> Result<Self, ExperimentError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Config {
            path: path.into(),
            cause: e.into(),
        })?;
        Self::from_toml_str(&text, path)
    }

    /// [`ExperimentConfig::from_toml_file`] on text already read; `path` names it in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ExperimentError> {
        let mut cfg: Self = toml::from_str(text).map_err(|e| ExperimentError::Config {
            path: path.into(),
            cause: e.into(),
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        for file in cfg.weights.values_mut() {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        cfg.validate().map_err(|e| ExperimentError::Config {
            path: path.into(),
            cause: e.into(),
        })?;
        Ok(cfg)
    }

    /// Values no run can satisfy, checked before any work starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.experiment;
        if e.resolutions.is_empty() || e.stages.is_empty() || e.models.is_empty() {
            return Err(ConfigError::Empty);
        }
        if let Some(&r) = e.resolutions.iter().find(|&&r| !(16..=4096).contains(&r)) {
            return Err(ConfigError::Resolution(r));
        }
        let model = |key: String, m: &str| {
            mammo_models::spec(m)
                .map(|_| ())
                .map_err(|cause| ConfigError::Model {
                    key,
                    cause: Box::new(cause),
                })
        };
        for m in &e.models {
            model(format!("model {m:?}"), m)?;
        }
        let field = |field: &'static str| move |cause| ConfigError::Field { field, cause };
        self.explain
            .method
            .parse::<mammo_explain::Method>()
            .map_err(|e| field("explain.method")(e.into()))?;
        if !(0.0..=1.0).contains(&self.explain.box_fraction) || self.explain.box_fraction == 0.0 {
            return Err(ConfigError::BoxFraction(self.explain.box_fraction));
        }
        let p = &self.phantom;
        p.size
            .parse::<mammo_phantom::SizePreset>()
            .map_err(|e| field("phantom.size")(e.into()))?;
        p.conspicuity
            .parse::<mammo_phantom::Conspicuity>()
            .map_err(|e| field("phantom.conspicuity")(e.into()))?;
        p.density
            .parse::<mammo_phantom::DensityMix>()
            .map_err(|e| field("phantom.density")(e.into()))?;
        if e.stages.contains(&Stage::Augmented) {
            if e.synthetic_positives == 0 {
                return Err(ConfigError::NoSyntheticPositives);
            }
            if let Some(&r) = e
                .resolutions
                .iter()
                .find(|&&r| !r.is_power_of_two() || r < 16)
            {
                return Err(ConfigError::NotAGeneratorSize(r));
            }
            if !(self.gan.stem_kimg > 0.0 && self.gan.head_kimg > 0.0 && self.gan.truncation > 0.0)
            {
                return Err(ConfigError::GanNotPositive);
            }
        }
        for m in self.weights.keys() {
            model(format!("[weights] {m:?}"), m)?;
        }
        if self.train.pretrained.is_some() && e.models.len() > 1 {
            return Err(ConfigError::OnePretrainedForMany);
        }
        let mut t = self.train.clone();
        t.model = e.models[0].clone();
        t.validate().map_err(|e| field("train")(e.into()))?;
        Ok(())
    }
}

/// An experiment file's values that no run can satisfy ([`ExperimentConfig::validate`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("experiment.resolutions, stages and models must each name at least one")]
    Empty,
    #[error("resolution {0} is outside 16..=4096")]
    Resolution(u32),
    /// A model name (in `experiment.models` or `[weights]`) that is not in the registry.
    #[error("{key}: {cause}")]
    Model {
        key: String,
        #[source]
        cause: Box<mammo_models::ModelError>,
    },
    /// A field whose value does not parse or validate.
    #[error("{field}: {cause}")]
    Field {
        field: &'static str,
        #[source]
        cause: Cause,
    },
    #[error("explain.box_fraction {0} must be in (0, 1]")]
    BoxFraction(f64),
    #[error("experiment.synthetic_positives must be positive for the augmented stage")]
    NoSyntheticPositives,
    #[error(
        "the augmented stage's generator grows by powers of two from 16 px: resolution {0} is \
         not one"
    )]
    NotAGeneratorSize(u32),
    #[error("gan.stem_kimg, head_kimg and truncation must be positive")]
    GanNotPositive,
    #[error(
        "train.pretrained names one file for every model; name each model's file in [weights] \
         (or use --weights-dir)"
    )]
    OnePretrainedForMany,
}

#[cfg(test)]
mod gan_tests {
    use super::*;

    #[test]
    fn generator_chains_follow_the_paper() {
        assert_eq!(GanSection::chain(16), [16]);
        assert_eq!(GanSection::chain(64), [16, 32, 64]);
        assert_eq!(GanSection::chain(256), [16, 32, 256]);
        assert_eq!(GanSection::chain(512), [16, 32, 256, 512]);
    }
}

#[cfg(test)]
mod config_files {
    use super::*;

    #[test]
    fn shipped_configs_load_and_paper_holds_the_papers_settings() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs"));
        let paper = ExperimentConfig::from_toml_file(&dir.join("paper.toml")).unwrap();
        assert_eq!(paper.experiment.resolutions, [256, 512]);
        assert_eq!(
            paper.experiment.stages,
            [Stage::Original, Stage::Processed, Stage::Augmented]
        );
        assert_eq!(
            paper.experiment.models,
            [
                "resnet18",
                "resnet34",
                "resnet152",
                "efficientnet_b0",
                "maxvit_nano_rw_256"
            ]
        );
        assert_eq!(paper.experiment.synthetic_positives, 1000);
        assert_eq!(
            (
                paper.train.folds,
                paper.train.batch_size,
                paper.train.epochs,
                paper.train.lr,
                paper.train.oversample_positives
            ),
            (5, 64, 3, 1e-4, 5)
        );
        assert_eq!(paper.gan.config, "gan-paper");
        let demo = ExperimentConfig::from_toml_file(&dir.join("demo.toml")).unwrap();
        let mut with_gan = demo.clone();
        with_gan.experiment.stages.push(Stage::Augmented);
        with_gan.validate().unwrap();
        // The full demo is the demo plus the augmented stage: the same data, models,
        // training and explanation settings, so the two reports compare row by row and a
        // full demo in the demo's folder reuses its steps.
        let full = ExperimentConfig::from_toml_file(&dir.join("demo-full.toml")).unwrap();
        assert_eq!(
            full.experiment.stages,
            [Stage::Original, Stage::Processed, Stage::Augmented]
        );
        assert_eq!(full.experiment.models, demo.experiment.models);
        assert_eq!(full.experiment.resolutions, demo.experiment.resolutions);
        assert_eq!(
            (&full.phantom, &full.train, &full.explain, &full.gan),
            (&demo.phantom, &demo.train, &demo.explain, &demo.gan)
        );
    }
}
