//! The explain loop, once: images (from a manifest, with their lesion boxes mapped into each
//! PNG, or plain files), one forward and backward pass per model and layer, every requested
//! method's map, its box and, where lesions are known, its localisation scores. What is
//! written (overlays and a CSV for `mammo explain`, triptychs and a layer grid for the
//! experiment) is the caller's, through a callback per image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mammo_dataset::ManifestRow;

use crate::{
    BBox, ExplainError, Explainer, Explanation, Localisation, LocalisationSummary, Method,
    centered_box, explain_ensemble, localise, summarise, threshold_box,
};

/// One image to explain.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Names the image's output files: the manifest's `image_id`, or the file's stem.
    pub name: String,
    /// A PNG at the model's size, or a DICOM file.
    pub path: PathBuf,
    /// The manifest's label, when there is one.
    pub label: Option<bool>,
    /// Known lesions in the image's pixels (empty: none known, nothing is scored).
    pub lesions: Vec<BBox>,
}

impl Target {
    /// A file given by path, with nothing known about it.
    pub fn file(path: &Path) -> Self {
        Self {
            name: path
                .file_stem()
                .map_or("image".into(), |s| s.to_string_lossy().into_owned()),
            path: path.to_path_buf(),
            label: None,
            lesions: Vec::new(),
        }
    }

    /// A manifest row whose PNG is below `base`, with its lesions from `truth` (stored-image
    /// boxes by `image_id`, as `lesions.csv` holds them) mapped into the PNG through the
    /// row's crop, mirror, scale and padding.
    pub fn from_row(row: &ManifestRow, base: &Path, truth: Option<&LesionTruth>) -> Self {
        let lesions = truth
            .and_then(|t| t.get(&row.image_id))
            .map(|boxes| {
                boxes
                    .iter()
                    .map(|&b| BBox::from(row.box_to_output(b)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            name: row.image_id.clone(),
            path: row.png_path(base),
            label: row.label,
            lesions,
        }
    }
}

/// Lesion boxes `[x0, y0, x1, y1]` in stored-image pixels, by `image_id`.
pub type LesionTruth = HashMap<String, Vec<[f64; 4]>>;

/// Where the box goes on a map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BoxRule {
    /// The paper's fixed-size square centred on the map's peak, `size` pixels a side.
    Centered { size: usize },
    /// The bounding box of the largest region above `fraction` of the maximum (an empty box
    /// when there is none).
    Threshold { fraction: f32 },
}

impl BoxRule {
    /// The box on a `[0, 1]` map `w` x `h`.
    pub fn place(&self, heat: &[f32], w: usize, h: usize) -> BBox {
        match *self {
            BoxRule::Centered { size } => centered_box(heat, w, h, size, size),
            BoxRule::Threshold { fraction } => {
                threshold_box(heat, w, h, fraction).unwrap_or(BBox {
                    x0: 0.0,
                    y0: 0.0,
                    x1: 0.0,
                    y1: 0.0,
                })
            }
        }
    }
}

/// Which feature layers each image is explained at.
#[derive(Debug, Clone, PartialEq)]
pub enum Layers {
    /// This one.
    One(usize),
    /// Every feature layer of the model for an image with known lesions (to score each),
    /// else only `default`.
    EveryScored { default: usize },
}

impl Layers {
    /// The layers to explain `t` at, of a model with `layers` feature layers.
    fn for_target(&self, t: &Target, layers: usize) -> Vec<usize> {
        match *self {
            Layers::One(l) => vec![l],
            Layers::EveryScored { default } if t.lesions.is_empty() => vec![default],
            Layers::EveryScored { .. } => (0..layers).collect(),
        }
    }
}

/// What to compute for every image.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub methods: Vec<Method>,
    pub layers: Layers,
    pub boxes: BoxRule,
    /// `[height, width]` of the model's input.
    pub size: [usize; 2],
}

/// One method's map at one layer, its box and, with known lesions, its scores.
#[derive(Debug, Clone)]
pub struct LayerMap {
    pub layer: usize,
    pub explanation: Explanation,
    pub bbox: BBox,
    pub localisation: Option<Localisation>,
}

/// One explained image.
#[derive(Debug, Clone)]
pub struct Explained {
    /// The models' mean probability of cancer.
    pub probability: f64,
    /// The image as the model saw it, `[0, 1]`, `[height, width]`.
    pub pixels: Vec<f32>,
    /// Per layer, per method, in [`BatchOptions`] order.
    pub maps: Vec<LayerMap>,
}

/// An image's pixels `[0, 1]` and its normalised model input: what a caller's loader gives.
pub struct Loaded {
    pub pixels: Vec<f32>,
    pub input: Vec<f32>,
}

/// What a batch did beside the per-image callbacks.
#[derive(Debug)]
pub struct BatchReport<E> {
    /// Images that could not be loaded, with why; the batch went on without them.
    pub failures: Vec<(PathBuf, E)>,
    /// Localisation per (layer, method) over the images with known lesions.
    pub scores: HashMap<(usize, Method), Vec<Localisation>>,
}

impl<E> BatchReport<E> {
    /// [`summarise`] of each (layer, method) that was scored.
    pub fn summaries(&self) -> HashMap<(usize, Method), LocalisationSummary> {
        self.scores
            .iter()
            .map(|(&key, s)| (key, summarise(s)))
            .collect()
    }
}

/// Explains every target with the models of `explainers` (their maps averaged, as
/// [`explain_ensemble`]): `load` reads an image (a failure is recorded and the batch goes
/// on), `each` receives every explained image (to write its files; its error stops the
/// batch). An engine error stops the batch.
pub fn explain_batch<E, W>(
    explainers: &[Explainer],
    targets: &[Target],
    opts: &BatchOptions,
    mut load: impl FnMut(&Target) -> Result<Loaded, E>,
    mut each: impl FnMut(&Target, Explained) -> Result<(), W>,
) -> Result<BatchReport<E>, BatchError<W>> {
    let [h, w] = opts.size;
    let layers = explainers.first().map_or(0, |e| e.feature_layers().len());
    let mut report = BatchReport {
        failures: Vec::new(),
        scores: HashMap::new(),
    };
    for target in targets {
        let Loaded { pixels, input } = match load(target) {
            Ok(l) => l,
            Err(e) => {
                report.failures.push((target.path.clone(), e));
                continue;
            }
        };
        let mut maps = Vec::new();
        let mut probability = 0.0;
        for layer in opts.layers.for_target(target, layers) {
            let ensemble = explain_ensemble(explainers, &input, h, w, layer, &opts.methods)?;
            probability = ensemble.probability;
            for explanation in ensemble.explanations {
                let bbox = opts.boxes.place(&explanation.heat, w, h);
                let localisation = (!target.lesions.is_empty())
                    .then(|| localise(explanation.peak, &bbox, &target.lesions));
                if let Some(l) = localisation {
                    report
                        .scores
                        .entry((layer, explanation.method))
                        .or_default()
                        .push(l);
                }
                maps.push(LayerMap {
                    layer,
                    explanation,
                    bbox,
                    localisation,
                });
            }
        }
        let explained = Explained {
            probability,
            pixels,
            maps,
        };
        each(target, explained).map_err(BatchError::Output)?;
    }
    Ok(report)
}

/// Why a batch stopped.
#[derive(Debug, thiserror::Error)]
pub enum BatchError<W> {
    #[error(transparent)]
    Explain(#[from] ExplainError),
    /// The caller's output failed.
    #[error("{0}")]
    Output(W),
}
