//! MaxViT (Tu et al., "MaxViT: Multi-Axis Vision Transformer", 2022) as timm builds its
//! `_rw_` variants in `timm/models/maxxvit.py` (`MaxxVit` with `_rw_max_cfg`): a two-conv
//! stem, four stages of MaxViT blocks (an [`MbConv`], then block-window attention, then
//! grid attention, each attention followed by an MLP), a final `LayerNorm2d`, global average
//! pooling, dropout and a linear classifier.
//!
//! A variant is a [`MaxVitArch`] value. The attention window and grid size are *not* part of
//! it: timm derives both from the image size the model is created for,
//! `img_size // partition_ratio` (8 at 256 x 256), and the relative position tables are
//! sized for that window. So the model is built for an input size ([`MaxVitOptions`]) and
//! accepts inputs whose every stage map is a multiple of the window, i.e. multiples of
//! `partition_ratio * window` (256 for a model built at 256).
//!
//! Field names are timm's attribute names, so the module paths are the timm state-dict keys
//! (`stem.conv1.weight`, `stages.2.blocks.1.attn_grid.attn.qkv.weight`,
//! `stages.1.blocks.0.conv.shortcut.expand.weight`, `norm.bias`, `head.fc.weight`, ...). timm's
//! non-persistent `relative_position_index` buffers are recomputed, not stored.
//!
//! Stochastic depth (timm `drop_path_rate`) is not implemented; eval-mode outputs do not
//! depend on it, and timm's default rate is 0.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Dropout, DropoutConfig, LayerNorm, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::classifier::Classifier;
use crate::kernels::{self, Act, norm_act};
use crate::layers::{
    MbConv, MbConvArgs, Partition, PartitionAttention, PartitionAttentionArgs, TRANSFORMER_LN_EPS,
    batch_norm, conv2d, global_avg_pool, layer_norm, layer_norm_2d,
};

/// A MaxViT variant as data (timm `MaxxVitCfg` with `block_type='M'` everywhere).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxVitArch {
    /// Output widths of `stem.conv1` and `stem.conv2` (timm `stem_width`).
    pub stem_width: [usize; 2],
    /// Width of each stage (timm `embed_dim`).
    pub embed_dim: [usize; 4],
    /// MaxViT blocks per stage (timm `depths`).
    pub depths: [usize; 4],
    /// Channels per attention head (timm `dim_head`).
    pub dim_head: usize,
    /// Image size over window (and grid) size (timm `partition_ratio`).
    pub partition_ratio: usize,
    /// MBConv hidden width over its input width (`expand_ratio`, `expand_output=False`).
    pub conv_expand_ratio: f64,
    /// Squeeze-excite width over the MBConv hidden width (timm `attn_ratio`).
    pub se_ratio: f64,
    /// Transformer MLP hidden width over the stage width (timm `expand_ratio`).
    pub mlp_ratio: f64,
}

/// timm `maxvit_nano_rw_256` (`model_cfgs['maxvit_nano_rw']`), 15.45 M parameters with an
/// ImageNet head at 256 x 256.
pub const MAXVIT_NANO_RW: MaxVitArch = MaxVitArch {
    stem_width: [32, 64],
    embed_dim: [64, 128, 256, 512],
    depths: [1, 2, 3, 1],
    dim_head: 32,
    partition_ratio: 32,
    conv_expand_ratio: 4.0,
    se_ratio: 1.0 / 16.0,
    mlp_ratio: 4.0,
};

/// Options of a MaxViT beyond its [`MaxVitArch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxVitOptions {
    /// Logits out of `head.fc`; 1 for a binary classifier.
    pub num_classes: usize,
    /// Image channels into `stem.conv1`: 1 (grey mammogram) or 3.
    pub in_chans: usize,
    /// Dropout probability on the pooled features before `head.fc`, in [0, 1).
    pub drop_rate: f64,
    /// `[height, width]` the model is built for (timm `img_size`); fixes the window size.
    pub img_size: [usize; 2],
}

/// timm `Stem`: 3x3/2 conv - BN - SiLU - 3x3 conv (no norm after the second conv).
#[derive(Module, Debug)]
pub struct Stem {
    pub conv1: Conv2d,
    pub norm1: BatchNorm,
    pub conv2: Conv2d,
}

impl Stem {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // [B, 32, H/2, W/2]
        let x = norm_act(&self.norm1, kernels::conv2d(&self.conv1, x), Act::Silu);
        kernels::conv2d(&self.conv2, x) // [B, 64, H/2, W/2]
    }
}

/// timm `MaxxVitBlock`: MBConv, then window attention, then grid attention (channels-last).
#[derive(Module, Debug)]
pub struct MaxVitBlock {
    pub conv: MbConv,
    pub attn_block: PartitionAttention,
    pub attn_grid: PartitionAttention,
}

impl MaxVitBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv.forward(x).permute([0, 2, 3, 1]); // [B, h, w, C]
        let x = self.attn_grid.forward(self.attn_block.forward(x)); // [B, h, w, C]
        x.permute([0, 3, 1, 2]) // [B, C, h, w]
    }
}

/// timm `MaxxVitStage`: key prefix `blocks.{i}`.
#[derive(Module, Debug)]
pub struct MaxVitStage {
    pub blocks: Vec<MaxVitBlock>,
}

/// timm `ClassifierHead`: global average pool, dropout, `fc`.
#[derive(Module, Debug)]
pub struct Head {
    pub drop: Dropout,
    pub fc: Linear,
}

/// timm `MaxxVit` for the `_rw_` MaxViT variants.
#[derive(Module, Debug)]
pub struct MaxVit {
    pub stem: Stem,
    pub stages: Vec<MaxVitStage>,
    /// timm `LayerNorm2d` on the last map (part of `forward_features`).
    pub norm: LayerNorm,
    pub head: Head,
    /// Window and grid size of every attention layer, `[height, width]`.
    pub partition_size: [usize; 2],
    /// Channels of the last feature map.
    pub num_features: usize,
}

impl MaxVit {
    /// A freshly initialised MaxViT (burn's default initialisers, timm's trunc-normal 0.02 for
    /// the relative position tables; this is not timm's `vit_eff` init). Panics when
    /// `img_size` is not a positive multiple of `arch.partition_ratio`; validate with
    /// [`crate::ModelConfig::validate`] first.
    pub fn new(arch: &MaxVitArch, options: &MaxVitOptions, device: &Device) -> Self {
        let partition_size = options.img_size.map(|s| s / arch.partition_ratio);
        assert!(
            options
                .img_size
                .iter()
                .all(|&s| s > 0 && s % arch.partition_ratio == 0),
            "MaxViT image size {:?} must be a positive multiple of {}",
            options.img_size,
            arch.partition_ratio
        );
        let [s0, s1] = arch.stem_width;
        let stem = Stem {
            conv1: conv2d(options.in_chans, s0, 3, 2, 1, false, device),
            norm1: batch_norm(s0, false, device),
            conv2: conv2d(s0, s1, 3, 1, 1, false, device),
        };
        let mut in_chans = s1;
        let stages = arch
            .embed_dim
            .iter()
            .zip(arch.depths)
            .map(|(&dim, depth)| {
                let blocks = (0..depth)
                    .map(|i| {
                        let conv = MbConvArgs {
                            in_chans,
                            out_chans: dim,
                            stride: if i == 0 { 2 } else { 1 },
                            expand_ratio: arch.conv_expand_ratio,
                            se_ratio: arch.se_ratio,
                        };
                        in_chans = dim;
                        let attn = PartitionAttentionArgs {
                            dim,
                            dim_head: arch.dim_head,
                            mlp_ratio: arch.mlp_ratio,
                            norm_eps: TRANSFORMER_LN_EPS,
                            size: partition_size,
                        };
                        MaxVitBlock {
                            conv: MbConv::new(&conv, device),
                            attn_block: PartitionAttention::new(Partition::Block, &attn, device),
                            attn_grid: PartitionAttention::new(Partition::Grid, &attn, device),
                        }
                    })
                    .collect();
                MaxVitStage { blocks }
            })
            .collect();
        let num_features = arch.embed_dim[3];
        Self {
            stem,
            stages,
            norm: layer_norm(num_features, TRANSFORMER_LN_EPS, device),
            head: Head {
                drop: DropoutConfig::new(options.drop_rate).init(),
                fc: LinearConfig::new(num_features, options.num_classes).init(device),
            },
            partition_size,
            num_features,
        }
    }

    /// The map after the stem and the first `n` stages (`n` in 0..=4), without the final
    /// norm: timm `model.stages[:n](model.stem(x))`. For inspection and parity checks.
    pub fn forward_stages(&self, x: Tensor<4>, n: usize) -> Tensor<4> {
        let x = self.stem.forward(x); // [B, 64, H/2, W/2]
        self.stages
            .iter()
            .take(n)
            .flat_map(|stage| &stage.blocks)
            .fold(x, |x, block| block.forward(x)) // [B, C_n, H/2^(n+1), W/2^(n+1)]
    }
}

impl Classifier for MaxVit {
    fn feature_layers(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.stages.len())
            .map(|i| format!("stages.{i}"))
            .collect();
        names.push("norm".into());
        names
    }

    fn forward_until(&self, x: Tensor<4>, layer: usize) -> Tensor<4> {
        if layer >= self.stages.len() {
            return self.forward_features(x);
        }
        self.forward_stages(x, layer + 1)
    }

    fn forward_after(&self, activations: Tensor<4>, layer: usize) -> Tensor<2> {
        let x = if layer >= self.stages.len() {
            activations
        } else {
            let x = self
                .stages
                .iter()
                .skip(layer + 1)
                .flat_map(|stage| &stage.blocks)
                .fold(activations, |x, block| block.forward(x));
            layer_norm_2d(&self.norm, x)
        };
        self.forward_head(x)
    }

    fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.forward_stages(x, self.stages.len()); // [B, 512, H/32, W/32]
        layer_norm_2d(&self.norm, x) // [B, 512, H/32, W/32]
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        let x = global_avg_pool(features); // [B, 512]
        let x = self.head.drop.forward(x); // [B, 512]
        self.head.fc.forward(x) // [B, num_classes]
    }

    fn first_conv(&self) -> &Conv2d {
        &self.stem.conv1
    }

    fn num_features(&self) -> usize {
        self.num_features
    }
}
