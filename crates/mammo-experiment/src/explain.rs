//! The paper's Figure 6 for one run: each fold's model explains the positive images of its
//! own validation fold (never an image it trained on) with a CAM-family map and the centered
//! box at the peak; scored against the lesion boxes when the data has them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use burn::tensor::Device;
use mammo_explain::batch::{
    BatchOptions, BoxRule, Explained, Layers, Loaded, Target, explain_batch,
};
use mammo_explain::render::{Rgb, draw_box, overlay, write_rgb_png};
use mammo_explain::{
    Explainer, Localisation, LocalisationSummary, METHODS, Method, centered_box, summarise,
};
use mammo_train::data::model_input;
use mammo_train::{Run, load_input};

use crate::config::ExplainSection;
use crate::{ExperimentError, io_err};

/// Localisation of one method at one feature layer, over the step's images.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerScore {
    pub method: String,
    pub layer: String,
    pub localisation: LocalisationSummary,
}

/// `summary.json` of an explain step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplainStep {
    pub method: String,
    /// The layer of `localisation` and the triptychs.
    pub layer: String,
    /// Whether `layer` was picked as the one where `method` points best on these same
    /// images (optimistic by construction; the grid shows every layer).
    #[serde(default)]
    pub layer_chosen: bool,
    /// Every method at every feature layer, when the data has lesion boxes.
    #[serde(default)]
    pub grid: Vec<LayerScore>,
    pub box_size: usize,
    pub images: usize,
    /// Against `lesions.csv`, when there is one.
    pub localisation: Option<LocalisationSummary>,
    /// Triptych PNGs (original | heat map | box), file names inside the step's folder.
    pub triptychs: Vec<String>,
    /// The folder (set when loaded).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl ExplainStep {
    pub fn load(dir: &Path) -> Result<Self, ExperimentError> {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|e| io_err("read", &path, e))?;
        let mut s: Self = serde_json::from_str(&text).map_err(|e| io_err("parse", &path, e))?;
        s.dir = dir.to_path_buf();
        Ok(s)
    }
}

fn step_err(run: &Path, e: impl Into<crate::Cause>) -> ExperimentError {
    ExperimentError::step(format!("explain {}", run.display()), e)
}

/// Grey `[0, 1]` pixels as RGB.
fn grey_rgb(px: &[f32], w: usize, h: usize) -> Rgb {
    Rgb {
        width: w,
        height: h,
        data: px
            .iter()
            .flat_map(|&v| [(v.clamp(0.0, 1.0) * 255.0).round() as u8; 3])
            .collect(),
    }
}

/// Panels side by side with a 4-pixel white gap.
fn side_by_side(panels: &[Rgb]) -> Rgb {
    let h = panels.iter().map(|p| p.height).max().unwrap_or(0);
    let gap = 4;
    let w = panels.iter().map(|p| p.width).sum::<usize>() + gap * panels.len().saturating_sub(1);
    let mut data = vec![255u8; w * h * 3];
    let mut x0 = 0;
    for p in panels {
        for y in 0..p.height {
            let src = &p.data[y * p.width * 3..(y + 1) * p.width * 3];
            data[(y * w + x0) * 3..(y * w + x0 + p.width) * 3].copy_from_slice(src);
        }
        x0 += p.width + gap;
    }
    Rgb {
        width: w,
        height: h,
        data,
    }
}

pub fn explain_run(
    run_dir: &Path,
    section: &ExplainSection,
    lesions: Option<&Path>,
    out: &Path,
    device: &Device,
) -> Result<ExplainStep, ExperimentError> {
    let run = Run::open(run_dir).map_err(|e| step_err(run_dir, e))?;
    let method: Method = section.method.parse().map_err(ExperimentError::Invalid)?;
    let [h, w] = run.info.input_size;
    let box_size = ((w as f64 * section.box_fraction).round() as usize).max(1);
    std::fs::create_dir_all(out).map_err(|e| io_err("create", out, e))?;
    let rows: HashMap<String, mammo_dataset::ManifestRow> =
        mammo_dataset::read_manifest(&run.info.manifest)
            .map_err(|e| step_err(run_dir, e))?
            .into_iter()
            .map(|r| (r.image_id.clone(), r))
            .collect();
    let truth = lesions
        .map(mammo_dataset::lesion_boxes_by_image)
        .transpose()?;
    let base = run
        .info
        .manifest
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();

    let folds = run.config.folds;
    let per_fold = section.images.div_ceil(folds.max(1));
    // Per image: the configured method's map at every layer (for the triptychs); per
    // (layer, method): the localisation scores.
    struct Figure {
        fold: usize,
        target: Target,
        probability: f64,
        pixels: Vec<f32>,
        heat_per_layer: Vec<Vec<f32>>,
    }
    let mut images: Vec<Figure> = Vec::new();
    let mut layers: Vec<String> = Vec::new();
    let mut default_layer = 0;
    let mut scores: HashMap<(usize, Method), Vec<Localisation>> = HashMap::new();
    for fold in 0..folds {
        // The positives of the fold's own validation set: never an image its model trained on.
        let targets: Vec<Target> = run
            .folds
            .iter()
            .filter(|r| r.fold == Some(fold) && r.label == 1)
            .take(per_fold)
            .filter_map(|fr| rows.get(&fr.image_id))
            .map(|row| Target::from_row(row, &base, truth.as_ref()))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let model = run
            .load_fold_model(fold, run.config.select, device)
            .map_err(|e| step_err(run_dir, e))?;
        let explainer = Explainer::new(model, run.model.clone(), device);
        layers = explainer.feature_layers();
        default_layer = match &section.layer {
            Some(name) => explainer
                .layer_index(Some(name))
                .map_err(|e| ExperimentError::invalid("explain.layer", e))?,
            None => explainer
                .layer_index(None)
                .map_err(|e| step_err(run_dir, e))?,
        };
        let opts = BatchOptions {
            methods: METHODS.to_vec(),
            // Every layer when there is ground truth to score against; else only the one.
            layers: Layers::EveryScored {
                default: default_layer,
            },
            boxes: BoxRule::Centered { size: box_size },
            size: [h, w],
        };
        let load = |t: &Target| {
            let pixels = load_input(&run, &t.path)?;
            let input = model_input(&pixels, h, w, &run.model);
            Ok::<_, mammo_train::TrainError>(Loaded { pixels, input })
        };
        let keep = |t: &Target, e: Explained| {
            let mut heat_per_layer = vec![Vec::new(); layers.len()];
            for m in e.maps {
                if m.explanation.method == method {
                    heat_per_layer[m.layer] = m.explanation.heat;
                }
            }
            images.push(Figure {
                fold,
                target: t.clone(),
                probability: e.probability,
                pixels: e.pixels,
                heat_per_layer,
            });
            Ok::<_, std::convert::Infallible>(())
        };
        let report = explain_batch(&[explainer], &targets, &opts, load, keep)
            .map_err(|e| step_err(run_dir, e))?;
        if let Some((_, e)) = report.failures.into_iter().next() {
            return Err(step_err(run_dir, e));
        }
        for (key, s) in report.scores {
            scores.entry(key).or_default().extend(s);
        }
    }
    let summaries: HashMap<(usize, Method), LocalisationSummary> =
        scores.iter().map(|(&key, s)| (key, summarise(s))).collect();
    let mut grid = Vec::new();
    for (layer, name) in layers.iter().enumerate() {
        for m in METHODS {
            if let Some(s) = summaries.get(&(layer, m)) {
                grid.push(LayerScore {
                    method: m.name().into(),
                    layer: name.clone(),
                    localisation: *s,
                });
            }
        }
    }
    // The configured layer, or the one where the method points best (ties: the deeper).
    let chosen = match &section.layer {
        Some(_) => default_layer,
        None => (0..layers.len())
            .filter_map(|l| summaries.get(&(l, method)).map(|s| (l, s)))
            .max_by(|a, b| {
                (a.1.pointing_game, a.1.mean_iou, a.0)
                    .partial_cmp(&(b.1.pointing_game, b.1.mean_iou, b.0))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map_or(default_layer, |(l, _)| l),
    };
    let localisation = summaries.get(&(chosen, method)).copied();
    let mut triptychs = Vec::new();
    for im in images.iter().take(section.figures) {
        let heat_map = &im.heat_per_layer[chosen];
        if heat_map.is_empty() {
            continue;
        }
        let b = centered_box(heat_map, w, h, box_size, box_size);
        let original = grey_rgb(&im.pixels, w, h);
        let heat = overlay(&im.pixels, heat_map, w, h, 0.4);
        let mut boxed = original.clone();
        let thick = (w / 128).max(1);
        for t in &im.target.lesions {
            draw_box(&mut boxed, t, [230, 40, 40], thick);
        }
        draw_box(&mut boxed, &b, [40, 220, 40], thick);
        let name = format!(
            "fold{}_{}_p{:03}.png",
            im.fold,
            im.target.name,
            (im.probability * 100.0).round() as u32
        );
        let path = out.join(&name);
        write_rgb_png(&path, &side_by_side(&[original, heat, boxed]))
            .map_err(|e| io_err("write", &path, e))?;
        triptychs.push(name);
    }
    let step = ExplainStep {
        method: method.name().into(),
        layer: layers.get(chosen).cloned().unwrap_or_default(),
        layer_chosen: section.layer.is_none() && localisation.is_some(),
        grid,
        box_size,
        images: images.len(),
        localisation,
        triptychs,
        dir: out.to_path_buf(),
    };
    let path = out.join("summary.json");
    mammo_image::write_atomic(
        &path,
        serde_json::to_string_pretty(&step)
            .expect("JSON")
            .as_bytes(),
    )
    .map_err(|e| io_err("write", &path, e))?;
    Ok(step)
}
