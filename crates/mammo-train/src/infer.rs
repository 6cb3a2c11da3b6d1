//! Using a finished run: re-scoring it, evaluating its fold ensemble on another manifest, and
//! predicting single images (PNG from `mammo preprocess`, or DICOM processed with the
//! training set's saved preprocessing settings).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use mammo_dataset::SourceMap;
use mammo_dicom::DicomImage;
use mammo_models::{Classifier, Model, ModelConfig};
use mammo_preprocess::{OutputSize, PipelineConfig, saved_pipeline};

use crate::config::Select;
use crate::data::{Dataset, ImageCache, model_input, read_image, unit_range};
use crate::error::{Result, SettingsError, TrainError, io_err};
use crate::report::{self, Metrics, Prediction, RunMetrics, sigmoid};
use crate::run::{Run, write_atomic, write_csv, write_json};
use crate::trainer::{fold_finished, predict_items};

/// Re-computes `metrics.json`, `metrics.md`, `oof_predictions.csv` and the plots of a
/// finished run from its saved fold predictions.
pub fn evaluate_run(dir: &Path) -> Result<RunMetrics> {
    let run = Run::open(dir)?;
    let unfinished: Vec<usize> = (0..run.config.folds)
        .filter(|&f| !fold_finished(dir, f, run.config.epochs))
        .collect();
    if !unfinished.is_empty() {
        return Err(TrainError::NotARun {
            path: dir.into(),
            reason: format!(
                "folds {unfinished:?} have not finished; run `mammo train` again with the same \
                 --out to resume"
            ),
        });
    }
    report::finish_run(dir)
}

/// The fold models of a run, in validation mode, averaged at prediction time.
pub struct Ensemble {
    pub run: Run,
    pub models: Vec<(usize, Model)>,
    pub device: Device,
}

impl std::fmt::Debug for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ensemble")
            .field("run", &self.run.dir)
            .field(
                "folds",
                &self.models.iter().map(|m| m.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Ensemble {
    /// Loads every finished fold's `best` or `last` weights (the run's `select` unless
    /// given).
    pub fn load(dir: &Path, select: Option<Select>, device: &Device) -> Result<Self> {
        let run = Run::open(dir)?;
        let which = select.unwrap_or(run.config.select);
        let mut models = Vec::new();
        for fold in run.trained_folds(which) {
            models.push((fold, run.load_fold_model(fold, which, device)?.valid()));
        }
        if models.is_empty() {
            return Err(TrainError::NotARun {
                path: dir.into(),
                reason: format!("no fold has {} yet", which.weights_file()),
            });
        }
        Ok(Self {
            run,
            models,
            device: device.clone(),
        })
    }

    pub fn model_config(&self) -> &ModelConfig {
        &self.run.model
    }

    /// `[h, w]` the models were trained at.
    pub fn input_size(&self) -> [usize; 2] {
        self.run.info.input_size
    }

    /// Mean probability over the fold models, and each fold's, for one `[0, 1]` image of the
    /// run's size.
    pub fn predict_pixels(&self, pixels: &[f32]) -> (f64, Vec<f64>) {
        let [h, w] = self.input_size();
        let cfg = self.model_config();
        let x = model_input(pixels, h, w, cfg);
        let per: Vec<f64> = self
            .models
            .iter()
            .map(|(_, m)| {
                let t = Tensor::<4>::from_data(
                    TensorData::new(x.clone(), [1, cfg.in_chans, h, w]),
                    &self.device,
                );
                let logit: f32 = m.forward(t).into_scalar();
                sigmoid(logit as f64)
            })
            .collect();
        (per.iter().sum::<f64>() / per.len() as f64, per)
    }
}

/// Where the training set's PNGs came from: `<preprocess out>/<size>/manifest.csv`.
fn preprocess_dir(run: &Run) -> Option<PathBuf> {
    run.info.manifest.parent()?.parent().map(Path::to_path_buf)
}

/// An input image as `[0, 1]` pixels of the run's input size. A PNG must already have that
/// size (made by `mammo preprocess`); anything else is read as DICOM and processed with the
/// settings the training set was made with (`preprocess.json`).
pub fn load_input(run: &Run, path: &Path) -> Result<Vec<f32>> {
    let [h, w] = run.info.input_size;
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png {
        let (ih, iw, px) = read_image(path)?;
        if [ih, iw] != [h, w] {
            return Err(TrainError::Image {
                path: path.into(),
                cause: format!(
                    "is {iw}x{ih}; the model was trained on {w}x{h} images (pass the DICOM \
                     instead, or preprocess with --height {h} --width {w})"
                )
                .into(),
            });
        }
        return Ok(px);
    }
    let pipeline = dicom_pipeline(run).map_err(|e| TrainError::Image {
        path: path.into(),
        cause: e.into(),
    })?;
    load_dicom(&pipeline, path, None)
}

/// The settings DICOM inputs are processed with: the training set's (`preprocess.json`),
/// at the run's input size. `Err` says why they cannot be had.
pub fn dicom_pipeline(run: &Run) -> std::result::Result<PipelineConfig, SettingsError> {
    let [h, w] = run.info.input_size;
    let dir = preprocess_dir(run).ok_or(SettingsError::NotLocated)?;
    let mut pipeline = saved_pipeline(&dir).map_err(SettingsError::Unreadable)?;
    pipeline.sizes = vec![OutputSize {
        height: h as u32,
        width: w as u32,
    }];
    Ok(pipeline)
}

/// A DICOM file through `pipeline` ([`dicom_pipeline`]) to `[0, 1]` pixels; `laterality`
/// (from a CSV) decides flipping over the file's own tag, as in `mammo preprocess`.
pub(crate) fn load_dicom(
    pipeline: &PipelineConfig,
    path: &Path,
    laterality: Option<&str>,
) -> Result<Vec<f32>> {
    let image = DicomImage::open(path).map_err(|e| TrainError::Image {
        path: path.into(),
        cause: e.into(),
    })?;
    Ok(prepare_dicom(pipeline, &image, laterality)?.pixels)
}

/// A DICOM image made into a model input with a run's preprocessing.
#[derive(Debug, Clone)]
pub struct PreparedDicom {
    /// `[0, 1]` pixels at the run's input size, row-major.
    pub pixels: Vec<f32>,
    /// How the stored image maps into `pixels` and back (crop, mirror, scale, padding).
    pub mapping: SourceMap,
    /// The laterality that decided the mirror: the hint, else the header's.
    pub laterality: Option<String>,
    /// The VOI transform applied, e.g. `LINEAR c=2047 w=4000`.
    pub voi_used: String,
}

/// An opened DICOM image (from a file or from memory) through `pipeline`
/// ([`dicom_pipeline`]) to a model input; `laterality` (from a CSV) decides flipping over the
/// file's own tag, as in `mammo preprocess`. What `mammo predict` and `mammo explain` do to a
/// DICOM file, for callers that hold the bytes (`mammo serve`).
pub fn prepare_dicom(
    pipeline: &PipelineConfig,
    image: &DicomImage,
    laterality: Option<&str>,
) -> Result<PreparedDicom> {
    let processed =
        mammo_preprocess::process_dicom(image, pipeline, laterality).map_err(|cause| {
            TrainError::Process {
                path: image.path().into(),
                cause,
            }
        })?;
    Ok(PreparedDicom {
        pixels: unit_range(&processed.outputs[0].pixels, pipeline.bits),
        mapping: processed.mapping(0),
        laterality: processed.laterality.clone(),
        voi_used: processed.voi_used.clone(),
    })
}

/// `mammo predict` output for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePrediction {
    pub path: PathBuf,
    /// Mean of the fold models' probabilities.
    pub probability: f64,
    pub fold_probabilities: Vec<f64>,
}

impl ImagePrediction {
    /// Each fold's probability to 4 decimals, space-separated.
    pub fn folds_text(&self) -> String {
        let folds: Vec<String> = self
            .fold_probabilities
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect();
        folds.join(" ")
    }
}

/// The CSV `mammo predict --csv` writes: `path,probability,fold_probabilities`, one row per
/// prediction, the probability to 6 decimals, the folds' as [`ImagePrediction::folds_text`].
pub fn predictions_csv<'a>(predictions: impl IntoIterator<Item = &'a ImagePrediction>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut put = |fields: [&str; 3]| w.write_record(fields).expect("in-memory CSV");
    put(["path", "probability", "fold_probabilities"]);
    for p in predictions {
        put([
            &p.path.to_string_lossy(),
            &format!("{:.6}", p.probability),
            &p.folds_text(),
        ]);
    }
    String::from_utf8(w.into_inner().expect("in-memory CSV")).expect("UTF-8 fields")
}

/// Predicts each image with the run's fold ensemble. Failures are per image (the batch goes
/// on); each `Err` names the file.
pub fn predict_images(ensemble: &Ensemble, images: &[PathBuf]) -> Vec<Result<ImagePrediction>> {
    images
        .iter()
        .map(|p| {
            let px = load_input(&ensemble.run, p)?;
            let (probability, fold_probabilities) = ensemble.predict_pixels(&px);
            Ok(ImagePrediction {
                path: p.clone(),
                probability,
                fold_probabilities,
            })
        })
        .collect()
}

/// Evaluates the run's fold ensemble (mean probability) on every usable row of `manifest`;
/// writes `predictions.csv`, `metrics.json` and `metrics.md` into `out`.
pub fn evaluate_manifest(
    ensemble: &Ensemble,
    manifest: &Path,
    out: &Path,
    progress: bool,
) -> Result<Metrics> {
    let data = Dataset::from_manifest(manifest)?;
    let size = ensemble.input_size();
    if data.size != size {
        return Err(TrainError::Manifest {
            path: manifest.into(),
            reason: format!(
                "images are {}x{}, the run was trained at {}x{}",
                data.size[1], data.size[0], size[1], size[0]
            ),
        });
    }
    let idx: Vec<usize> = (0..data.items.len()).collect();
    let mut sum = vec![0f64; idx.len()];
    for (fold, model) in &ensemble.models {
        let logits = predict_items(
            model,
            ensemble.model_config(),
            &data.items,
            &idx,
            size,
            ensemble.run.config.eval_batch_size,
            &ensemble.device,
            progress,
            &format!("fold {fold} model"),
            &ImageCache::new(0),
        )?;
        for (s, l) in sum.iter_mut().zip(logits) {
            *s += sigmoid(l);
        }
    }
    let n = ensemble.models.len() as f64;
    let rows: Vec<Prediction> = data
        .items
        .iter()
        .zip(&sum)
        .map(|(item, &s)| {
            let p = (s / n).clamp(1e-12, 1.0 - 1e-12);
            let mut r = Prediction::new(item, None, (p / (1.0 - p)).ln());
            r.probability = s / n;
            r
        })
        .collect();
    std::fs::create_dir_all(out).map_err(|e| io_err("create", out, e))?;
    let metrics = report::metrics_of(&rows);
    write_csv(&out.join("predictions.csv"), &rows)?;
    write_json(&out.join("metrics.json"), &metrics)?;
    let md = format!(
        "# {} fold ensemble ({} models) on {}\n\n| images | positives | accuracy | ROC-AUC | \
         precision | recall | F1 | best F1 | pF1 | TP | FP | TN | FN \
         |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} |\n",
        ensemble.run.model.architecture,
        ensemble.models.len(),
        manifest.display(),
        metrics.binary.n,
        metrics.binary.positives,
        report::metric_cells(&metrics)
    );
    write_atomic(&out.join("metrics.md"), md.as_bytes())?;
    Ok(metrics)
}
