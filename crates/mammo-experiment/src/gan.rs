//! The augmented stage's data: per resolution and fold, a GAN on the processed positives of
//! the fold's training images (the validation fold is never seen by its generator), grown
//! 16 px -> 32 px -> (256 px) -> the resolution, then `synthetic_positives` generated images
//! marked for that fold's training only.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mammo_dataset::{Dataset, ManifestRow, assign_folds};
use mammo_gan::{GanConfig, GanTrainOptions, GenerateOptions, ImageSource, generate, train_gan};
use mammo_train::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::config::GanSection;
use crate::{ExperimentError, io_err};

/// What one fold's GAN step left behind (`gan.json` in its folder).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanFold {
    pub resolution: u32,
    pub fold: usize,
    /// Real positives the generator learned from.
    pub positives: usize,
    /// One run folder per stage, 16 px first.
    pub runs: Vec<PathBuf>,
    /// Generated rows (absolute paths, `synthetic_fold` = this fold).
    pub manifest: PathBuf,
    /// FID/KID of the last stage's final evaluation, if it had held-out images.
    pub last_fid: Option<f64>,
    pub last_kid: Option<f64>,
    pub features: String,
}

fn step_err(step: &str, e: impl Into<crate::Cause>) -> ExperimentError {
    ExperimentError::step(step, e)
}

/// The resolved GAN config of `[gan]` (preset name or file).
pub fn gan_config(section: &GanSection) -> Result<GanConfig, ExperimentError> {
    GanConfig::load(&section.config).map_err(|e| ExperimentError::invalid("gan.config", e))
}

/// Trains fold `fold`'s generator chain in `dir` and writes its synthetic rows.
#[allow(clippy::too_many_arguments)]
pub fn run_fold(
    processed: &Path,
    train: &TrainConfig,
    section: &GanSection,
    gan: &GanConfig,
    res: u32,
    fold: usize,
    n: usize,
    dir: &Path,
    device: &Device,
    progress: bool,
) -> Result<GanFold, ExperimentError> {
    let name = format!("gan {res}px fold {fold}");
    let data = Dataset::from_manifest(processed).map_err(|e| step_err(&name, e))?;
    let folds = assign_folds(&data.items, train.split, train.folds, train.seed)
        .map_err(|e| step_err(&name, e))?;
    let keep: std::collections::HashSet<&str> = data
        .items
        .iter()
        .zip(&folds)
        .filter(|(it, f)| it.label == 1 && !it.synthetic && **f != Some(fold))
        .map(|(it, _)| it.image_id.as_str())
        .collect();
    let rows = mammo_dataset::read_manifest(processed).map_err(|e| step_err(&name, e))?;
    let base = processed
        .parent()
        .unwrap_or(Path::new("."))
        .canonicalize()
        .map_err(|e| io_err("resolve", processed, e))?;
    let real: Vec<ManifestRow> = rows
        .into_iter()
        .filter(|r| r.is_ok() && keep.contains(r.image_id.as_str()))
        .map(|mut r| {
            r.path = base.join(&r.path).to_string_lossy().into_owned();
            r
        })
        .collect();
    if real.len() < 4 {
        return Err(step_err(
            &name,
            format!(
                "only {} training positives; a generator needs more (more patients or a higher \
                 prevalence)",
                real.len()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    let source_manifest = dir.join("real_positives.csv");
    mammo_dataset::write_manifest(&source_manifest, &real).map_err(|e| step_err(&name, e))?;
    let source = ImageSource::Manifest {
        path: source_manifest,
        label: Some(true),
    };

    let mut runs = Vec::new();
    let mut stem: Option<PathBuf> = None;
    let mut last = None;
    for r in GanSection::chain(res) {
        let mut cfg = gan.clone();
        cfg.training.kimg = if stem.is_none() {
            section.stem_kimg
        } else {
            section.head_kimg
        };
        cfg.training.seed = mammo_rand::derive(gan.training.seed, &[res as u64, fold as u64]);
        let out = dir.join(format!("g{r}"));
        let opts = GanTrainOptions {
            source: source.clone(),
            out: out.clone(),
            res: r as usize,
            stem: stem.clone(),
            device: device.clone(),
            metric_features: None,
            progress,
            log: false,
            stop_after_kimg: None,
        };
        let s = train_gan(&cfg, &opts).map_err(|e| step_err(&format!("{name} at {r} px"), e))?;
        eprintln!(
            "      {name}: {r} px, {} kimg in {:.0} s{}",
            s.kimg,
            s.seconds,
            s.metrics.last().map_or(String::new(), |m| format!(
                ", FID {:.2}, KID {:.4} ({})",
                m.fid, m.kid, s.features
            ))
        );
        last = Some(s);
        runs.push(out.clone());
        stem = Some(out);
    }
    let last = last.expect("a chain has a stem");
    let syn = dir.join("synthetic");
    let run = stem.expect("a chain has a stem");
    let g = generate(&GenerateOptions {
        run: run.clone(),
        n,
        out: syn.clone(),
        truncation: section.truncation,
        seed: fold as u64,
        base_manifest: None,
        device: device.clone(),
        progress,
    })
    .map_err(|e| step_err(&format!("{name}: generate"), e))?;
    let mut rows = mammo_dataset::read_manifest(&g.manifest).map_err(|e| step_err(&name, e))?;
    let syn_abs = syn.canonicalize().map_err(|e| io_err("resolve", &syn, e))?;
    for r in &mut rows {
        r.path = syn_abs.join(&r.path).to_string_lossy().into_owned();
        r.synthetic_fold = Some(fold);
        r.patient_id = format!("f{fold}-{}", r.patient_id);
        r.image_id = format!("f{fold}-{}", r.image_id);
    }
    let manifest = dir.join("synthetic_rows.csv");
    mammo_dataset::write_manifest(&manifest, &rows).map_err(|e| step_err(&name, e))?;
    let m = last.metrics.last();
    let out = GanFold {
        resolution: res,
        fold,
        positives: real.len(),
        runs,
        manifest,
        last_fid: m.map(|m| m.fid),
        last_kid: m.map(|m| m.kid),
        features: last.features,
    };
    let text = serde_json::to_string_pretty(&out).expect("JSON");
    mammo_image::write_atomic(&dir.join("gan.json"), text.as_bytes())
        .map_err(|e| io_err("write", dir, e))?;
    Ok(out)
}

impl GanFold {
    pub fn load(dir: &Path) -> Result<Self, ExperimentError> {
        let p = dir.join("gan.json");
        let text = std::fs::read_to_string(&p).map_err(|e| io_err("read", &p, e))?;
        serde_json::from_str(&text).map_err(|e| io_err("parse", &p, e))
    }
}

/// The augmented manifest: the processed rows (absolute paths) and every fold's synthetic
/// rows, written to `path`.
pub fn write_augmented(
    processed: &Path,
    folds: &[GanFold],
    path: &Path,
) -> Result<(), ExperimentError> {
    let base = processed
        .parent()
        .unwrap_or(Path::new("."))
        .canonicalize()
        .map_err(|e| io_err("resolve", processed, e))?;
    let mut rows = mammo_dataset::read_manifest(processed).map_err(|e| step_err("augment", e))?;
    for r in &mut rows {
        r.path = base.join(&r.path).to_string_lossy().into_owned();
    }
    for f in folds {
        rows.extend(mammo_dataset::read_manifest(&f.manifest).map_err(|e| step_err("augment", e))?);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_err("create", parent, e))?;
    }
    mammo_dataset::write_manifest(path, &rows).map_err(|e| step_err("augment", e))
}
