//! The training protocol as one typed, serialisable config, with the paper's values as a
//! preset. Saved as `train_config.json` in every run folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

pub use mammo_dataset::Split;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam; `weight_decay` (if > 0) is added to the gradient (L2), as in PyTorch's Adam.
    Adam,
    /// AdamW: decoupled weight decay.
    Adamw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// fastai's `fit_one_cycle` learning rate: cosine warm-up from `lr / div_factor` to `lr`
    /// over `pct_start` of the steps, then cosine annealing to `lr / (div_factor *
    /// final_div_factor)`.
    OneCycle,
    /// `lr` for every step.
    Constant,
}

/// Which checkpoint of each fold produces the out-of-fold predictions and the reported
/// metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// The last epoch: no choice made on the validation fold, so its metrics are unbiased.
    Last,
    /// The epoch with the best validation ROC-AUC (optimistic: chosen on the same images).
    Best,
}

impl Select {
    /// The per-fold weights file of this choice.
    pub fn weights_file(self) -> &'static str {
        match self {
            Select::Last => "last.safetensors",
            Select::Best => "best.safetensors",
        }
    }

    /// How reports name it.
    pub fn label(self) -> &'static str {
        match self {
            Select::Last => "last",
            Select::Best => "best-AUC",
        }
    }
}

/// Everything that decides what a training run computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// timm model name from the registry (`mammo_models::MODELS`).
    pub model: String,
    /// Optional timm `.safetensors` checkpoint to start from (ImageNet weights); a 3-channel
    /// first conv is summed to one channel, a mismatched classifier is re-initialised.
    pub pretrained: Option<PathBuf>,
    /// Dropout before the classifier. Its masks come from burn's process-wide generator, so a
    /// resumed run is bit-identical only if no other training shares the process.
    pub drop_rate: f64,
    /// Number of cross-validation folds (>= 2).
    pub folds: usize,
    /// Only train these folds (all when empty); the others are left for another call.
    pub only_folds: Vec<usize>,
    pub split: Split,
    /// Seeds folds, initialisation, order and flips. Same seed, same data: same run.
    pub seed: u64,
    pub batch_size: usize,
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub weight_decay: f64,
    /// Adam betas (fastai's Adam: 0.9, 0.99).
    pub betas: [f64; 2],
    /// Adam epsilon (fastai's Adam: 1e-5).
    pub eps: f64,
    pub schedule: Schedule,
    /// One-cycle: fraction of steps spent warming up (fastai 0.25).
    pub pct_start: f64,
    /// One-cycle: start lr = lr / div_factor (fastai 25).
    pub div_factor: f64,
    /// One-cycle: end lr = start lr / final_div_factor (fastai 1e5).
    pub final_div_factor: f64,
    /// Each positive training image is seen this many times per epoch (1 = no oversampling).
    pub oversample_positives: usize,
    /// Probability of a horizontal flip of each training sample.
    pub hflip: f64,
    /// Probability of a vertical flip of each training sample (0 in the paper's protocol).
    pub vflip: f64,
    /// Largest random translation of each training sample, as a fraction of the image's
    /// height and width (0 = none, the paper's protocol); the border it uncovers is black,
    /// like the background around a breast.
    pub shift: f64,
    pub eval_batch_size: usize,
    pub select: Select,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::paper_protocol(Split::Patient)
    }
}

impl TrainConfig {
    /// The paper's protocol (batch 64, 3 epochs, lr 1e-4, positives 5:1, flips, Adam with a
    /// one-cycle schedule as in fastai) with the given split.
    fn paper_protocol(split: Split) -> Self {
        Self {
            model: "resnet18".into(),
            pretrained: None,
            drop_rate: 0.0,
            folds: 5,
            only_folds: Vec::new(),
            split,
            seed: 42,
            batch_size: 64,
            epochs: 3,
            lr: 1e-4,
            optimizer: OptimizerKind::Adam,
            weight_decay: 0.0,
            betas: [0.9, 0.99],
            eps: 1e-5,
            schedule: Schedule::OneCycle,
            pct_start: 0.25,
            div_factor: 25.0,
            final_div_factor: 1e5,
            oversample_positives: 5,
            hflip: 0.5,
            vflip: 0.0,
            shift: 0.0,
            eval_batch_size: 64,
            select: Select::Last,
        }
    }

    /// A named preset: `default` (paper protocol, folds grouped by patient) or `paper`
    /// (exactly the paper: stratified per image).
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "default" => Ok(Self::paper_protocol(Split::Patient)),
            "paper" => Ok(Self::paper_protocol(Split::Image)),
            other => Err(TrainError::Config(format!(
                "unknown preset {other:?} (known: default, paper)"
            ))),
        }
    }

    /// Read a TOML file: its `[train]` table if it has one, else the whole file. Keys not
    /// given keep their defaults; unknown keys are an error.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| crate::error::io_err("read", path, e))?;
        Self::from_toml_str(&text, path)
    }

    /// [`TrainConfig::from_toml_file`] on text already read; `path` names it in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        let value: toml::Table = text
            .parse()
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        let table = match value.get("train") {
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => {
                return Err(TrainError::Config(format!(
                    "{}: `train` must be a table",
                    path.display()
                )));
            }
            None => value,
        };
        let cfg: Self = table
            .try_into()
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        mammo_models::spec(&self.model)?;
        if self.folds < 2 {
            return bad(format!("folds must be at least 2, got {}", self.folds));
        }
        if let Some(f) = self.only_folds.iter().find(|&&f| f >= self.folds) {
            return bad(format!(
                "only_folds has fold {f}, but there are {} folds (0..{})",
                self.folds, self.folds
            ));
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return bad("batch sizes must be at least 1".into());
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr must be positive, got {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight_decay must be >= 0, got {}",
                self.weight_decay
            ));
        }
        if !(self.betas.iter().all(|b| (0.0..1.0).contains(b))
            && self.eps.is_finite()
            && self.eps > 0.0)
        {
            return bad(format!(
                "betas must be in [0, 1) and eps positive, got {:?} and {}",
                self.betas, self.eps
            ));
        }
        if !(0.0..1.0).contains(&self.pct_start) {
            return bad(format!(
                "pct_start must be in [0, 1), got {}",
                self.pct_start
            ));
        }
        if !(self.div_factor >= 1.0 && self.final_div_factor >= 1.0) {
            return bad("div_factor and final_div_factor must be >= 1".into());
        }
        if self.oversample_positives == 0 {
            return bad("oversample_positives must be at least 1 (1 = none)".into());
        }
        if !(0.0..=1.0).contains(&self.hflip) {
            return bad(format!("hflip is a probability, got {}", self.hflip));
        }
        if !(0.0..=1.0).contains(&self.vflip) {
            return bad(format!("vflip is a probability, got {}", self.vflip));
        }
        if !(0.0..0.5).contains(&self.shift) {
            return bad(format!(
                "shift is a fraction of the image side in [0, 0.5), got {}",
                self.shift
            ));
        }
        if !(self.drop_rate.is_finite() && (0.0..1.0).contains(&self.drop_rate)) {
            return bad(format!(
                "drop_rate must be in [0, 1), got {}",
                self.drop_rate
            ));
        }
        Ok(())
    }

    /// Folds this call trains.
    pub fn folds_to_train(&self) -> Vec<usize> {
        if self.only_folds.is_empty() {
            (0..self.folds).collect()
        } else {
            self.only_folds.clone()
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("TrainConfig serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_toml() {
        let paper = TrainConfig::preset("paper").unwrap();
        assert_eq!(
            (
                paper.batch_size,
                paper.epochs,
                paper.lr,
                paper.oversample_positives
            ),
            (64, 3, 1e-4, 5)
        );
        assert_eq!(paper.split, Split::Image);
        assert_eq!(TrainConfig::default().split, Split::Patient);
        assert!(TrainConfig::preset("fast").is_err());

        let dir = std::env::temp_dir().join(format!("mammo-train-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        std::fs::write(
            &p,
            "[train]\nmodel = \"efficientnet_b0\"\nepochs = 2\nsplit = \"image\"\n",
        )
        .unwrap();
        let c = TrainConfig::from_toml_file(&p).unwrap();
        assert_eq!(
            (c.model.as_str(), c.epochs, c.split, c.batch_size),
            ("efficientnet_b0", 2, Split::Image, 64)
        );
        std::fs::write(&p, "epochs = 2\nepoch = 3\n").unwrap();
        let e = TrainConfig::from_toml_file(&p).unwrap_err().to_string();
        assert!(e.contains("epoch"), "{e}");
        std::fs::write(&p, "model = \"resnet19\"\n").unwrap();
        assert!(
            TrainConfig::from_toml_file(&p)
                .unwrap_err()
                .to_string()
                .contains("resnet19")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
