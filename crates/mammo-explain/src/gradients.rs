//! Activations of a feature layer and the gradient of the logit with respect to them, from
//! one forward and one backward pass (burn autodiff). The model stays in inference
//! behaviour (batch norm on running statistics, no dropout) while gradients flow.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use mammo_models::{Classifier, Model, ModelConfig};

use crate::ExplainError;

/// A model ready to be explained: on an autodiff device, frozen (inference behaviour,
/// no parameter gradients).
pub struct Explainer {
    model: Model,
    cfg: ModelConfig,
    device: Device,
}

impl std::fmt::Debug for Explainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explainer")
            .field("model", &self.cfg.architecture)
            .finish()
    }
}

/// What one pass yields for one image.
#[derive(Debug, Clone)]
pub struct LayerGradients {
    pub logit: f32,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub activations: Vec<f32>,
    pub grads: Vec<f32>,
}

impl Explainer {
    /// `model` built on `device` (plain; its autodiff twin is used here) with `cfg`.
    pub fn new(model: Model, cfg: ModelConfig, device: &Device) -> Self {
        let device = if device.is_autodiff() {
            device.clone()
        } else {
            device.clone().autodiff()
        };
        let model = model.to_device(&device).freeze();
        Self { model, cfg, device }
    }

    pub fn model_config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn feature_layers(&self) -> Vec<String> {
        self.model.feature_layers()
    }

    /// Index of a layer by name; `None` picks the last (what `forward_features` returns).
    pub fn layer_index(&self, name: Option<&str>) -> Result<usize, ExplainError> {
        let layers = self.feature_layers();
        match name {
            None => Ok(layers.len() - 1),
            Some(n) => {
                layers
                    .iter()
                    .position(|l| l == n)
                    .ok_or_else(|| ExplainError::UnknownLayer {
                        layer: n.to_string(),
                        model: self.cfg.architecture.clone(),
                        known: layers,
                    })
            }
        }
    }

    /// Forward to `layer`, cut the graph there, forward to the logit and back.
    /// `input` is the normalised `[in_chans, H, W]` image.
    pub fn layer_gradients(
        &self,
        input: Vec<f32>,
        height: usize,
        width: usize,
        layer: usize,
    ) -> Result<LayerGradients, ExplainError> {
        let x = Tensor::<4>::from_data(
            TensorData::new(input, [1, self.cfg.in_chans, height, width]),
            &self.device,
        );
        let acts = self.model.forward_until(x, layer).detach().require_grad();
        let [_, c, h, w] = acts.dims();
        let logits = self.model.forward_after(acts.clone(), layer);
        let logit: Tensor<1> = logits.clone().reshape([-1]).narrow(0, 0, 1);
        let value: f32 = logits.clone().slice([0..1, 0..1]).into_scalar();
        let grads = logit.sum().backward();
        let g = acts.grad(&grads).ok_or(ExplainError::NoGradient)?;
        let read = |t: Tensor<4>| {
            t.into_data()
                .try_into_vec::<f32>()
                .map_err(|e| ExplainError::Engine(format!("{e:?}")))
        };
        Ok(LayerGradients {
            logit: value,
            channels: c,
            height: h,
            width: w,
            activations: read(acts.inner())?,
            grads: read(g)?,
        })
    }
}
