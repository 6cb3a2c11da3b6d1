//! The run folder: what was asked (configs, manifest digest, folds), checked on every resume.
//!
//! ```text
//! RUN/train_config.json      resolved TrainConfig
//! RUN/model_config.json      ModelConfig (architecture, input size, normalisation)
//! RUN/run.json               manifest path + sha256, counts, versions, device
//! RUN/folds.csv              image_id, patient_id, laterality, label, synthetic, fold,
//!                            synthetic_fold
//! RUN/fold-K/checkpoint/     resume state of fold K (model + optimiser + state.json; only
//!                            state.json once the fold has run every epoch)
//! RUN/fold-K/last.safetensors, best.safetensors   timm-format weights
//! RUN/fold-K/history.csv     per-epoch losses and validation metrics
//! RUN/fold-K/predictions_{last,best}.csv          validation predictions
//! RUN/oof_predictions.csv, metrics.json, metrics.md, plots/*.svg   once every fold is done
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use burn::tensor::Device;
use mammo_models::{Model, ModelConfig, create_model, load_timm_safetensors};

use crate::config::{Select, TrainConfig};
use crate::data::{Dataset, Item};
use crate::error::{Result, TrainError, io_err};

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub tool: String,
    pub version: String,
    pub engine: String,
    pub manifest: PathBuf,
    pub manifest_sha256: String,
    pub images: usize,
    pub positives: usize,
    pub synthetic: usize,
    pub skipped_failed: usize,
    pub input_size: [usize; 2],
}

/// One row of `folds.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldRow {
    pub image_id: String,
    pub patient_id: String,
    pub laterality: String,
    pub label: u8,
    pub synthetic: u8,
    /// Empty for synthetic rows (training only).
    pub fold: Option<usize>,
    /// For a synthetic row made for one fold's training only: that fold.
    #[serde(default)]
    pub synthetic_fold: Option<usize>,
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| io_err("read", path, e))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `bytes` to `path` through a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    mammo_io::write_atomic(path, bytes).map_err(|e| io_err("write", path, e))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    Ok(mammo_io::write_json(path, value)?)
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    Ok(mammo_io::read_json(path)?)
}

pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    Ok(mammo_io::write_csv(path, rows)?)
}

pub fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    Ok(mammo_io::read_csv(path)?)
}

/// Creates the run folder or checks that an existing one was started with the same config,
/// model and manifest (only `only_folds` may differ between calls). Writes the fold
/// assignment on first use.
pub fn prepare(
    out: &Path,
    cfg: &TrainConfig,
    model: &ModelConfig,
    data: &Dataset,
    folds: &[Option<usize>],
) -> Result<RunInfo> {
    std::fs::create_dir_all(out).map_err(|e| io_err("create", out, e))?;
    let info = RunInfo {
        tool: "mammo".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        engine: "burn 0.22.1".into(),
        manifest: std::path::absolute(&data.manifest).unwrap_or_else(|_| data.manifest.clone()),
        manifest_sha256: sha256_file(&data.manifest)?,
        images: data.items.len(),
        positives: data.positives(),
        synthetic: data.items.iter().filter(|i| i.synthetic).count(),
        skipped_failed: data.skipped_failed,
        input_size: data.size,
    };
    let identity = TrainConfig {
        only_folds: Vec::new(),
        ..cfg.clone()
    };
    let cfg_path = out.join("train_config.json");
    if cfg_path.exists() {
        let saved: TrainConfig = read_json(&cfg_path)?;
        let saved = TrainConfig {
            only_folds: Vec::new(),
            ..saved
        };
        if saved != identity {
            return Err(mismatch(
                out,
                "training config",
                &saved.to_json(),
                &identity.to_json(),
            ));
        }
        let saved_model = ModelConfig::load_json(&out.join("model_config.json"))?;
        if &saved_model != model {
            return Err(mismatch(
                out,
                "model config",
                &saved_model.to_json(),
                &model.to_json(),
            ));
        }
        let saved_info: RunInfo = read_json(&out.join("run.json"))?;
        if saved_info.manifest_sha256 != info.manifest_sha256 {
            return Err(mismatch(
                out,
                "manifest",
                &format!(
                    "{} (sha256 {})",
                    saved_info.manifest.display(),
                    saved_info.manifest_sha256
                ),
                &format!(
                    "{} (sha256 {})",
                    info.manifest.display(),
                    info.manifest_sha256
                ),
            ));
        }
        let saved_folds: Vec<FoldRow> = read_csv(&out.join("folds.csv"))?;
        if saved_folds != fold_rows(&data.items, folds) {
            return Err(mismatch(
                out,
                "fold assignment",
                "folds.csv",
                "the folds this config makes",
            ));
        }
        return Ok(saved_info);
    }
    write_json(&out.join("run.json"), &info)?;
    write_csv(&out.join("folds.csv"), &fold_rows(&data.items, folds))?;
    model.save_json(&out.join("model_config.json"))?;
    // Written last: its presence marks a complete run header.
    write_json(&cfg_path, &identity)?;
    Ok(info)
}

fn mismatch(run: &Path, what: &'static str, saved: &str, now: &str) -> TrainError {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    TrainError::RunMismatch {
        run: run.to_path_buf(),
        what,
        saved: squash(saved),
        now: squash(now),
    }
}

pub fn fold_rows(items: &[Item], folds: &[Option<usize>]) -> Vec<FoldRow> {
    items
        .iter()
        .zip(folds)
        .map(|(i, &fold)| FoldRow {
            image_id: i.image_id.clone(),
            patient_id: i.patient_id.clone(),
            laterality: i.laterality.clone(),
            label: i.label,
            synthetic: u8::from(i.synthetic),
            fold,
            synthetic_fold: i.synthetic_fold,
        })
        .collect()
}

pub fn fold_dir(run: &Path, fold: usize) -> PathBuf {
    run.join(format!("fold-{fold}"))
}

/// A finished or started run read back from its folder.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub config: TrainConfig,
    pub model: ModelConfig,
    pub info: RunInfo,
    pub folds: Vec<FoldRow>,
}

impl Run {
    pub fn open(dir: &Path) -> Result<Self> {
        let not_run = |reason: String| TrainError::NotARun {
            path: dir.to_path_buf(),
            reason,
        };
        let cfg_path = dir.join("train_config.json");
        if !cfg_path.exists() {
            return Err(not_run("no train_config.json".into()));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config: read_json(&cfg_path)?,
            model: ModelConfig::load_json(&dir.join("model_config.json"))?,
            info: read_json(&dir.join("run.json"))?,
            folds: read_csv(&dir.join("folds.csv"))?,
        })
    }

    /// `fold-K/last.safetensors` or `fold-K/best.safetensors`.
    pub fn weights_path(&self, fold: usize, select: Select) -> PathBuf {
        fold_dir(&self.dir, fold).join(select.weights_file())
    }

    /// The folds that have `select`'s weights file, in order (the members of the run's
    /// ensemble; a fold still training has none yet).
    pub fn trained_folds(&self, select: Select) -> Vec<usize> {
        (0..self.config.folds)
            .filter(|&f| self.weights_path(f, select).exists())
            .collect()
    }

    /// That fold's saved model on `device` (training behaviour; `.valid()` for inference).
    pub fn load_fold_model(&self, fold: usize, select: Select, device: &Device) -> Result<Model> {
        let mut model = create_model(&self.model, device)?;
        load_timm_safetensors(
            &mut model,
            mammo_models::spec(&self.model.architecture)?,
            &self.weights_path(fold, select),
        )?;
        Ok(model)
    }
}
