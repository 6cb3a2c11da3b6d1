//! What a set of weights needs to be used: architecture, head, input channels, input size,
//! normalisation (timm `PretrainedCfg` plus the constructor arguments). Saved as JSON beside
//! every checkpoint and inside its safetensors metadata.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::registry::{Arch, spec};

/// ImageNet channel means (timm `IMAGENET_DEFAULT_MEAN`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (timm `IMAGENET_DEFAULT_STD`).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Metadata key under which [`crate::save_safetensors`] stores the config as JSON.
pub const CONFIG_METADATA_KEY: &str = "mammo.model_config";

/// Everything needed to rebuild a model and feed it correctly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// timm model name, a key of the registry ([`crate::MODELS`]), e.g. `"resnet18"`.
    pub architecture: String,
    /// Logits out of the classifier; 1 for a binary (sigmoid) head. Default 1.
    pub num_classes: usize,
    /// Image channels: 1 (grey) or 3. Default 1.
    pub in_chans: usize,
    /// Dropout before the classifier, in [0, 1). Default 0.
    pub drop_rate: f64,
    /// Input `[height, width]` the weights were trained at. Default: the registry's.
    pub input_size: [usize; 2],
    /// Per-channel mean subtracted from a [0, 1] image; `in_chans` values.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after the mean; `in_chans` values.
    pub std: Vec<f32>,
}

impl ModelConfig {
    /// Defaults for `architecture`: one logit, one input channel, no dropout, the registry's
    /// input size, and the registry's normalisation (ImageNet for most models) averaged over
    /// RGB (for one channel).
    ///
    /// The grey mean/std is this project's choice, not timm's: a 3-channel checkpoint adapted
    /// to one channel by summing its first conv (see [`crate::load_timm_safetensors`]) sees a
    /// grey image as R = G = B, so one shared mean and std, the RGB averages, is the closest
    /// match.
    pub fn new(architecture: &str) -> Result<Self> {
        let spec = spec(architecture)?;
        let mut cfg = Self {
            architecture: spec.name.to_string(),
            num_classes: 1,
            in_chans: 1,
            drop_rate: 0.0,
            input_size: spec.default_input_size,
            mean: Vec::new(),
            std: Vec::new(),
        };
        cfg.set_normalisation();
        Ok(cfg)
    }

    /// Same config with `in_chans` changed and mean/std reset to match.
    pub fn with_in_chans(mut self, in_chans: usize) -> Self {
        self.in_chans = in_chans;
        self.set_normalisation();
        self
    }

    /// Same config with `num_classes` changed.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Same config with `input_size` changed. For MaxViT this sets the attention window
    /// (`input_size / 32`), hence the shape of the relative position tables.
    pub fn with_input_size(mut self, input_size: [usize; 2]) -> Self {
        self.input_size = input_size;
        self
    }

    /// Same config with `drop_rate` changed.
    pub fn with_drop_rate(mut self, drop_rate: f64) -> Self {
        self.drop_rate = drop_rate;
        self
    }

    /// The registry's mean/std for the architecture (ImageNet's for an unknown name, which
    /// [`Self::validate`] rejects anyway), averaged over RGB unless `in_chans` is 3.
    fn set_normalisation(&mut self) {
        let (mean, std) = spec(&self.architecture)
            .map(|s| (s.mean, s.std))
            .unwrap_or((IMAGENET_MEAN, IMAGENET_STD));
        if self.in_chans == 3 {
            self.mean = mean.to_vec();
            self.std = std.to_vec();
        } else {
            let avg = |v: [f32; 3]| v.iter().sum::<f32>() / 3.0;
            self.mean = vec![avg(mean); self.in_chans];
            self.std = vec![avg(std); self.in_chans];
        }
    }

    /// Check every field against what the architecture can be built with.
    pub fn validate(&self) -> Result<()> {
        let spec = spec(&self.architecture)?;
        let invalid = |reason: String| {
            Err(ModelError::InvalidConfig {
                model: self.architecture.clone(),
                reason,
            })
        };
        if self.num_classes == 0 {
            return invalid("num_classes must be at least 1".into());
        }
        if !matches!(self.in_chans, 1 | 3) {
            return invalid(format!("in_chans must be 1 or 3, got {}", self.in_chans));
        }
        if !(self.drop_rate.is_finite() && (0.0..1.0).contains(&self.drop_rate)) {
            return invalid(format!(
                "drop_rate must be in [0, 1), got {}",
                self.drop_rate
            ));
        }
        if self.input_size.contains(&0) {
            return invalid(format!(
                "input_size must be positive, got {:?}",
                self.input_size
            ));
        }
        if let Arch::MaxVit(arch) = &spec.arch {
            let r = arch.partition_ratio;
            if self.input_size.iter().any(|s| s % r != 0) {
                return invalid(format!(
                    "input_size must be a multiple of {r} (the attention window is input_size / \
                     {r}), got {:?}",
                    self.input_size
                ));
            }
        }
        if self.mean.len() != self.in_chans || self.std.len() != self.in_chans {
            return invalid(format!(
                "mean and std need {} value(s) each, got {} and {}",
                self.in_chans,
                self.mean.len(),
                self.std.len()
            ));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return invalid(format!("std values must be positive, got {:?}", self.std));
        }
        Ok(())
    }

    /// Pretty JSON, the form written beside artefacts.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("ModelConfig serialises")
    }

    /// Parse and validate JSON written by [`Self::to_json`].
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: Self = serde_json::from_str(text).map_err(ModelError::ConfigJson)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Write [`Self::to_json`] to `path` atomically (synced temporary sibling, then rename).
    pub fn save_json(&self, path: &Path) -> Result<()> {
        let io_err = |e: std::io::Error| ModelError::Store {
            action: "write",
            path: path.to_path_buf(),
            cause: e.into(),
        };
        mammo_io::write_atomic(path, self.to_json().as_bytes()).map_err(io_err)
    }

    /// Read a config written by [`Self::save_json`].
    pub fn load_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Store {
            action: "read",
            path: path.to_path_buf(),
            cause: e.into(),
        })?;
        Self::from_json(&text)
    }
}
