//! Feature networks for FID and KID.
//!
//! FID proper is Inception-v3 pool3 (2048-d) with pytorch-fid's weights. Where those are not
//! at hand, any registered backbone can stand in, with timm weights or weights from a mammo
//! run (for phantom data, a classifier trained on it sees what matters). Such numbers are
//! labelled with the network and weights they came from ([`FeatureNet::label`]) and are not
//! comparable with published FID.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use mammo_models::{Classifier, Model, ModelConfig, create_model, load_timm_safetensors};

use crate::error::{GanError, Result};
use crate::layers::{classifier_input, stored_model_config};

/// A frozen network mapping images to feature vectors.
// Built once per evaluation run and held; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum FeatureNet {
    /// A registered classifier's pooled last feature map.
    Backbone {
        model: Model,
        cfg: ModelConfig,
        label: String,
    },
    /// pytorch-fid's Inception-v3 pool3 (2048-d): FID proper.
    Inception {
        model: mammo_inception::FidInception,
        label: String,
    },
}

impl FeatureNet {
    /// `name`: a registered model; `weights`: a timm or mammo safetensors file (a mammo file's
    /// own model config, e.g. 1 input channel at 128 px, is used), or `None` for a randomly
    /// initialised network with a fixed seed (a weak, clearly labelled fallback).
    pub fn backbone(name: &str, weights: Option<&Path>, device: &Device) -> Result<Self> {
        let device = device.clone().inner();
        let spec = mammo_models::spec(name)?;
        let cfg = match stored_model_config(name, weights, "the feature network")? {
            Some(c) => c,
            // timm weights: the size they were trained at; no weights: a small fixed size
            None if weights.is_some() => ModelConfig::new(name)?
                .with_in_chans(3)
                .with_input_size(spec.default_input_size),
            None => ModelConfig::new(name)?
                .with_in_chans(3)
                .with_input_size([64, 64]),
        };
        let mut model = mammo_models::seeded(&device, 0x6665_6174, || -> Result<_> {
            let model = create_model(&cfg, &device)?;
            mammo_models::materialise(&model);
            Ok(model)
        })?;
        let dim = model.num_features();
        let label = match weights {
            Some(w) => {
                load_timm_safetensors(&mut model, spec, w)?;
                format!(
                    "{name} features ({dim}-d pooled, weights {}, {}x{} input; not Inception, not \
                     comparable with published FID)",
                    w.display(),
                    cfg.input_size[1],
                    cfg.input_size[0]
                )
            }
            None => format!(
                "{name} features ({dim}-d pooled, randomly initialised with a fixed seed; a weak \
                 fallback, not FID)"
            ),
        };
        let model = model.valid();
        Ok(Self::Backbone { model, cfg, label })
    }

    /// pytorch-fid's Inception-v3 from a safetensors file converted once from
    /// `pt_inception-2015-12-05-6726825d.pth` (`tools/convert_pt_inception.py`).
    pub fn inception(weights: &Path, device: &Device) -> Result<Self> {
        let model = mammo_inception::load_safetensors(weights, &device.clone().inner())?;
        Ok(Self::Inception {
            model,
            label: format!(
                "Inception-v3 pool3 (pytorch-fid weights {})",
                weights.display()
            ),
        })
    }

    /// `inception` (weights required) or a registered model name.
    pub fn by_name(name: &str, weights: Option<&Path>, device: &Device) -> Result<Self> {
        match (name, weights) {
            ("inception" | "inception_v3", Some(w)) => Self::inception(w, device),
            ("inception" | "inception_v3", None) => Err(GanError::Config(
                "FID Inception needs its weights: convert pytorch-fid's \
                 pt_inception-2015-12-05-6726825d.pth once with tools/convert_pt_inception.py \
                 and pass the .safetensors file"
                    .into(),
            )),
            _ => Self::backbone(name, weights, device),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Self::Backbone { label, .. } | Self::Inception { label, .. } => label,
        }
    }

    pub fn dim(&self) -> usize {
        match self {
            Self::Backbone { model, .. } => model.num_features(),
            Self::Inception { .. } => mammo_inception::FEATURE_DIM,
        }
    }

    /// Features of images in `[-1, 1]` (`[N, 1 or 3, H, W]`, any size), `N * dim` values.
    pub fn features(&self, images: Tensor<4>) -> Vec<f32> {
        match self {
            Self::Backbone { model, cfg, .. } => {
                let device = model.first_conv().weight.val().device();
                let n = images.dims()[0];
                let x = classifier_input(
                    images.to_device(&device),
                    cfg.in_chans,
                    &cfg.mean,
                    &cfg.std,
                    cfg.input_size,
                );
                let f = model.forward_features(x);
                let d = f.dims()[1];
                f.mean_dim(3)
                    .mean_dim(2)
                    .reshape([n, d])
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32 features")
            }
            Self::Inception { model, .. } => {
                let device = model.Conv2d_1a_3x3.conv.weight.val().device();
                let images = images.to_device(&device);
                let c = images.dims()[1];
                let x = (images + 1.0) * 0.5;
                let x = if c == 1 { x.repeat_dim(1, 3) } else { x };
                model
                    .pool3(x)
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32 features")
            }
        }
    }

    /// Features of many images in batches; `images` is `[n, channels, h, w]` row-major.
    pub fn features_of(
        &self,
        values: &[f32],
        shape: [usize; 4],
        batch: usize,
        device: &Device,
    ) -> Vec<f32> {
        let [n, c, h, w] = shape;
        let per = c * h * w;
        let mut out = Vec::with_capacity(n * self.dim());
        for start in (0..n).step_by(batch.max(1)) {
            let end = (start + batch).min(n);
            let x = Tensor::<4>::from_data(
                TensorData::new(
                    values[start * per..end * per].to_vec(),
                    [end - start, c, h, w],
                ),
                &device.clone().inner(),
            );
            out.extend(self.features(x));
        }
        out
    }
}
