//! Explanations of a classifier's decision on a mammogram: class activation maps (CAM,
//! Grad-CAM, Grad-CAM++, LayerCAM, HiResCAM) at any feature layer, the paper's centered box
//! at the peak (or a threshold box), and localisation scores against known lesions
//! (pointing game, IoU, hit rates).
//!
//! The maps are plain arithmetic on activations and gradients ([`cam`]); [`Explainer`] gets
//! those from a burn model; [`boxes`] and [`render`] turn a map into boxes and pictures.

pub mod boxes;
pub mod cam;
mod gradients;
pub mod render;

use std::path::PathBuf;

use thiserror::Error;

pub use boxes::{
    BBox, Localisation, LocalisationSummary, centered_box, localise, peak, summarise, threshold_box,
};
pub use cam::{METHODS, Method, cam_map, heat_map, min_max, resize_bilinear};
pub use gradients::{Explainer, LayerGradients};

#[derive(Debug, Error)]
pub enum ExplainError {
    #[error("{model} has no feature layer {layer:?} (known: {})", known.join(", "))]
    UnknownLayer {
        layer: String,
        model: String,
        known: Vec<String>,
    },
    #[error("no gradient reached the target layer")]
    NoGradient,
    #[error("engine: {0}")]
    Engine(String),
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// One method's result on one image at input resolution.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub method: Method,
    /// Raw map at the layer's resolution (ReLU applied, unscaled).
    pub raw: Vec<f32>,
    pub raw_size: [usize; 2],
    /// `[0, 1]` map at the image's resolution.
    pub heat: Vec<f32>,
    /// Peak of `heat`, `(x, y)` in image pixels.
    pub peak: (usize, usize),
}

/// Every requested method from one pass's activations and gradients.
pub fn explain(
    g: &LayerGradients,
    methods: &[Method],
    height: usize,
    width: usize,
) -> Vec<Explanation> {
    methods
        .iter()
        .map(|&method| {
            let raw = cam_map(
                method,
                &g.activations,
                &g.grads,
                g.channels,
                g.height,
                g.width,
            );
            let heat = heat_map(&raw, g.height, g.width, height, width);
            let peak = peak(&heat, width);
            Explanation {
                method,
                raw,
                raw_size: [g.height, g.width],
                heat,
                peak,
            }
        })
        .collect()
}
