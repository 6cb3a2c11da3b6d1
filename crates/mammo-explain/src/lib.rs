//! Explanations of a classifier's decision on a mammogram: class activation maps (CAM,
//! Grad-CAM, Grad-CAM++, LayerCAM, HiResCAM) at any feature layer, the paper's centered box
//! at the peak (or a threshold box), and localisation scores against known lesions
//! (pointing game, IoU, hit rates).
//!
//! The maps are plain arithmetic on activations and gradients ([`cam`]); [`Explainer`] gets
//! those from a burn model; [`boxes`] and [`render`] turn a map into boxes and pictures;
//! [`batch`] is the loop over images that `mammo explain` and the experiment share.

pub mod batch;
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
    #[error("{path}: cannot write: {cause}")]
    Write {
        path: PathBuf,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
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

/// The mean explanation of several models of one image (the folds of a cross-validated
/// run): per method, the mean of the members' `[0, 1]` heat maps rescaled to `[0, 1]`, its
/// peak, and the mean raw map. `members[k]` is model k's [`explain`] output for the same
/// methods, in the same order, on an image `width` pixels wide. One member comes back as is.
///
/// # Panics
/// When `members` is empty or the members disagree on methods or sizes.
pub fn mean_explanation(members: Vec<Vec<Explanation>>, width: usize) -> Vec<Explanation> {
    assert!(!members.is_empty(), "at least one member");
    if members.len() == 1 {
        return members.into_iter().next().expect("one member");
    }
    let n = members.len() as f32;
    (0..members[0].len())
        .map(|i| {
            let e0 = &members[0][i];
            let mut heat = vec![0f32; e0.heat.len()];
            let mut raw = vec![0f32; e0.raw.len()];
            for m in &members {
                let e = &m[i];
                assert!(
                    e.method == e0.method
                        && e.heat.len() == heat.len()
                        && e.raw_size == e0.raw_size,
                    "ensemble members explain differently"
                );
                heat.iter_mut().zip(&e.heat).for_each(|(a, b)| *a += b / n);
                raw.iter_mut().zip(&e.raw).for_each(|(a, b)| *a += b / n);
            }
            let heat = min_max(&heat);
            Explanation {
                method: e0.method,
                raw,
                raw_size: e0.raw_size,
                peak: peak(&heat, width),
                heat,
            }
        })
        .collect()
}

/// What a fold ensemble says about one image: its probability and the mean explanation.
#[derive(Debug, Clone)]
pub struct EnsembleExplanation {
    /// Mean of the members' probabilities (sigmoid of each member's logit).
    pub probability: f64,
    /// Each member's probability, in the order of the explainers.
    pub member_probabilities: Vec<f64>,
    /// Per method, the [`mean_explanation`] of the members' maps.
    pub explanations: Vec<Explanation>,
}

/// Explains one image with every member of an ensemble (one forward and backward pass each
/// at feature layer `layer`) and averages: the probability is the members' mean, the maps are
/// [`mean_explanation`]. `input` is the normalised `[in_chans, height, width]` image. The one
/// loop over members that `mammo explain` and `mammo serve` share.
///
/// # Panics
/// When `explainers` is empty.
pub fn explain_ensemble(
    explainers: &[Explainer],
    input: &[f32],
    height: usize,
    width: usize,
    layer: usize,
    methods: &[Method],
) -> Result<EnsembleExplanation, ExplainError> {
    assert!(!explainers.is_empty(), "at least one explainer");
    let mut members = Vec::with_capacity(explainers.len());
    let mut member_probabilities = Vec::with_capacity(explainers.len());
    for explainer in explainers {
        let g = explainer.layer_gradients(input.to_vec(), height, width, layer)?;
        member_probabilities.push(sigmoid(g.logit as f64));
        members.push(explain(&g, methods, height, width));
    }
    Ok(EnsembleExplanation {
        probability: member_probabilities.iter().sum::<f64>() / explainers.len() as f64,
        member_probabilities,
        explanations: mean_explanation(members, width),
    })
}

/// The logistic function, in the form that stays finite for large `|x|`.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(heat: Vec<f32>) -> Vec<Explanation> {
        vec![Explanation {
            method: Method::GradCam,
            raw: heat.clone(),
            raw_size: [2, 2],
            heat,
            peak: (0, 0),
        }]
    }

    #[test]
    fn the_mean_map_peaks_where_the_members_agree() {
        // Two folds each put their own spurious maximum elsewhere but agree on (1, 1).
        let a = member(vec![1.0, 0.0, 0.0, 0.9]);
        let b = member(vec![0.0, 1.0, 0.0, 0.9]);
        let m = mean_explanation(vec![a, b], 2);
        assert_eq!(m[0].peak, (1, 1));
        assert!((m[0].heat[3] - 1.0).abs() < 1e-5);
        assert_eq!(m[0].heat[2], 0.0);
        assert!((m[0].raw[0] - 0.5).abs() < 1e-6);
        let one = mean_explanation(vec![member(vec![0.2, 0.4, 0.1, 0.0])], 2);
        assert_eq!(one[0].heat, vec![0.2, 0.4, 0.1, 0.0]);
    }
}
