//! The projected discriminator (Sauer et al. 2021, as StyleGAN-XL uses it): a frozen feature
//! network reads the image at four scales; frozen random 1x1 convolutions mix channels (CCM)
//! and frozen random 3x3 convolutions mix scales top-down (CSM); a small trainable
//! discriminator with spectral norm judges each mixed scale. Only those mini-discriminators
//! train.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};

use mammo_models::{Classifier, Model, ModelConfig, create_model, load_timm_safetensors};

use crate::config::GanConfig;
use crate::error::{GanError, Result};
use crate::layers::{SnConv2d, classifier_input, resize, stored_model_config};

/// Spectral-norm conv 4x4 stride 2, batch norm, leaky ReLU 0.2.
#[derive(Module, Debug)]
pub struct DownBlock {
    pub conv: SnConv2d,
    pub bn: BatchNorm,
}

impl DownBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        leaky_relu(self.bn.forward(self.conv.forward(x)), 0.2)
    }
}

/// One scale's discriminator: halve down to 8x8 or less, then a spectral-norm conv to one
/// logit per position.
#[derive(Module, Debug)]
pub struct MiniDisc {
    pub blocks: Vec<DownBlock>,
    pub out: SnConv2d,
}

impl MiniDisc {
    fn new(in_ch: usize, size: usize, max_ch: usize, device: &Device) -> Self {
        let (mut ch, mut s) = (in_ch, size);
        let mut blocks = Vec::new();
        while s > 8 {
            let out = (ch * 2).min(max_ch).max(ch.min(max_ch));
            blocks.push(DownBlock {
                conv: SnConv2d::new(ch, out, 4, 2, 1, device),
                bn: BatchNormConfig::new(out).init(device),
            });
            ch = out;
            s /= 2;
        }
        let out = if s >= 4 {
            SnConv2d::new(ch, 1, 4, 1, 0, device)
        } else {
            SnConv2d::new(ch, 1, 1, 1, 0, device)
        };
        Self { blocks, out }
    }

    /// `[N, C, s, s]` to `[N, k]` logits.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.blocks.iter().fold(x, |x, b| b.forward(x));
        let y = self.out.forward(x);
        let n = y.dims()[0];
        y.reshape([n as i64, -1])
    }
}

/// The whole discriminator. Build with [`ProjectedDiscriminator::new`].
#[derive(Module, Debug)]
pub struct ProjectedDiscriminator {
    pub backbone: Model,
    pub ccm: Vec<Conv2d>,
    pub csm: Vec<Conv2d>,
    pub heads: Vec<MiniDisc>,
    layers: Vec<usize>,
    feature_res: usize,
    in_chans: usize,
    mean: Vec<f32>,
    std: Vec<f32>,
}

/// Indices of the last feature layer at each of the strides 4, 8, 16, 32, from the shapes a
/// `res`-pixel input gives. A final layer at the same stride as the one before it (a
/// classifier's 1x1 `conv_head`) is passed over, as projected GANs read the blocks.
fn default_layers(shapes: &[[usize; 4]], res: usize) -> Vec<usize> {
    let n = shapes.len();
    let usable = if n >= 2 && shapes[n - 1][2] == shapes[n - 2][2] {
        n - 1
    } else {
        n
    };
    let mut out = Vec::new();
    for stride in [4, 8, 16, 32] {
        if let Some(i) = shapes[..usable]
            .iter()
            .rposition(|s| s[2] == res.div_ceil(stride))
            && out.last() != Some(&i)
        {
            out.push(i);
        }
    }
    out
}

impl ProjectedDiscriminator {
    /// Builds the discriminator, loading the backbone's weights if the config names a file.
    /// Everything but the mini-discriminators is frozen.
    pub fn new(cfg: &GanConfig, device: &Device) -> Result<Self> {
        let d = &cfg.discriminator;
        let spec = mammo_models::spec(&d.backbone)?;
        // a mammo run's weights carry their own config (e.g. 1 input channel, its own
        // normalisation); timm weights are RGB with the registry's normalisation
        let stored = stored_model_config(
            &d.backbone,
            d.backbone_weights.as_deref(),
            "discriminator.backbone",
        )?;
        let (in_chans, mean, std) = match &stored {
            Some(c) => (c.in_chans, c.mean.clone(), c.std.clone()),
            None => (3, spec.mean.to_vec(), spec.std.to_vec()),
        };
        let model_cfg = ModelConfig::new(&d.backbone)?
            .with_in_chans(in_chans)
            .with_input_size([d.feature_res, d.feature_res]);
        let mut backbone = create_model(&model_cfg, device)?;
        if let Some(w) = &d.backbone_weights {
            load_timm_safetensors(&mut backbone, spec, w)?;
        }
        let backbone = backbone.freeze();

        let probe_device = device.clone().inner();
        let probe = backbone.valid().forward_pyramid(
            Tensor::zeros([1, in_chans, d.feature_res, d.feature_res], &probe_device),
            &(0..backbone.feature_layers().len()).collect::<Vec<_>>(),
        );
        let shapes: Vec<[usize; 4]> = probe.iter().map(|t| t.dims()).collect();
        let layers = match &d.feature_layers {
            Some(l) => l.clone(),
            None => default_layers(&shapes, d.feature_res),
        };
        if layers.is_empty()
            || layers.iter().any(|&l| l >= shapes.len())
            || !layers.windows(2).all(|w| w[0] < w[1])
        {
            return Err(GanError::Config(format!(
                "discriminator.feature_layers {layers:?}: need increasing indices below {} for {}",
                shapes.len(),
                d.backbone
            )));
        }
        let k = layers.len();
        let cout: Vec<usize> = (0..k).map(|i| d.proj_channels << i).collect();
        let conv = |cin: usize, co: usize, kernel: usize| {
            let p = kernel / 2;
            Conv2dConfig::new([cin, co], [kernel, kernel])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(true)
                .init(device)
                .freeze()
        };
        let ccm = (0..k)
            .map(|i| conv(shapes[layers[i]][1], cout[i], 1))
            .collect();
        let csm = (0..k)
            .map(|i| conv(cout[i], cout[i.saturating_sub(1)], 3))
            .collect();
        let heads = (0..k)
            .map(|i| {
                MiniDisc::new(
                    cout[i.saturating_sub(1)],
                    shapes[layers[i]][2],
                    d.disc_channels,
                    device,
                )
            })
            .collect();
        Ok(Self {
            backbone,
            ccm,
            csm,
            heads,
            layers,
            feature_res: d.feature_res,
            in_chans,
            mean,
            std,
        })
    }

    /// Feature layers read, and their names.
    pub fn describe(&self) -> Vec<String> {
        let names = self.backbone.feature_layers();
        self.layers.iter().map(|&l| names[l].clone()).collect()
    }

    /// Images in `[-1, 1]` (`[N, 1 or 3, H, W]`) to `[N, k]` logits over all scales and positions.
    pub fn forward(&self, img: Tensor<4>) -> Tensor<2> {
        let x = classifier_input(
            img,
            self.in_chans,
            &self.mean,
            &self.std,
            [self.feature_res, self.feature_res],
        );
        let feats = self.backbone.forward_pyramid(x, &self.layers);
        let proj: Vec<Tensor<4>> = feats
            .into_iter()
            .zip(&self.ccm)
            .map(|(f, m)| m.forward(f))
            .collect();
        let k = proj.len();
        let mut mixed: Vec<Option<Tensor<4>>> = vec![None; k];
        let mut deeper: Option<Tensor<4>> = None;
        for i in (0..k).rev() {
            let mut t = proj[i].clone();
            if let Some(d) = deeper.take() {
                let [_, _, h, w] = t.dims();
                t = t + resize(d, [h, w]);
            }
            let m = self.csm[i].forward(t);
            deeper = Some(m.clone());
            mixed[i] = Some(m);
        }
        let logits: Vec<Tensor<2>> = mixed
            .into_iter()
            .zip(&self.heads)
            .map(|(m, h)| h.forward(m.expect("every scale mixed")))
            .collect();
        Tensor::cat(logits, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn four_scales_and_only_the_heads_train() {
        let d = Device::flex().autodiff();
        d.seed(2);
        let cfg = GanConfig::cpu();
        let disc = ProjectedDiscriminator::new(&cfg, &d).unwrap();
        assert_eq!(
            disc.describe(),
            ["blocks.1", "blocks.2", "blocks.4", "blocks.6"]
        );
        let x = Tensor::<4>::random([2, 1, 16, 16], Distribution::Uniform(-1.0, 1.0), &d)
            .require_grad();
        let logits = disc.forward(x.clone());
        assert_eq!(logits.dims()[0], 2);
        let grads = logits.mean().backward();
        // gradient reaches the image (the generator's path) ...
        let gx: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(gx.iter().any(|v| v.abs() > 0.0));
        // ... and the heads, but not the frozen backbone or projections
        assert!(disc.heads[0].out.weight.val().grad(&grads).is_some());
        assert!(disc.ccm[0].weight.val().grad(&grads).is_none());
        assert!(
            disc.backbone
                .first_conv()
                .weight
                .val()
                .grad(&grads)
                .is_none()
        );
    }
}
