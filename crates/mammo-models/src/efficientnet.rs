//! EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
//! Networks", 2019) and EfficientNet-Lite as timm builds them in `timm/models/efficientnet.py`
//! (`_gen_efficientnet`, `_gen_efficientnet_lite`): a 3x3/2 stem conv + BN + act, seven stages
//! of depthwise-separable / inverted-residual blocks, a 1x1 head conv + BN + act, global
//! average pooling, dropout and a linear classifier.
//!
//! A variant is an [`EfficientNetArch`] value: its stage table (timm's `arch_def` strings,
//! decoded), stem and head widths, squeeze-excite ratio and [`ConvStyle`] (activation,
//! batch-norm epsilon, padding). Only the width/depth multiplier 1.0 variants are defined, so
//! the stage table holds final channel counts and repeats.
//!
//! Field names are timm's attribute names, so the module paths are the timm state-dict keys
//! (`blocks.1.0.conv_pwl.weight`, `blocks.0.0.se.conv_reduce.bias`, `classifier.weight`, ...);
//! the [`MbBlock`] variant names are skipped when weights are stored.
//!
//! Stochastic depth (timm `drop_path_rate`) is not implemented; eval-mode outputs do not
//! depend on it, and timm's default rate is 0.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::classifier::Classifier;
use crate::kernels;
use crate::layers::{
    Activation, BlockArgs, ConvStyle, DepthwiseSeparable, InvertedResidual, PYTORCH_BN_EPS,
    Padding, TF_BN_EPS, global_avg_pool,
};

/// Which block a stage stacks (the `ds` / `ir` prefix of a timm block string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// [`DepthwiseSeparable`] (`ds`).
    DepthwiseSeparable,
    /// [`InvertedResidual`] (`ir`).
    InvertedResidual,
}

/// One stage: a timm block string such as `ir_r2_k3_s2_e6_c24_se0.25`, decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageDef {
    /// Block type (`ds` / `ir`).
    pub kind: BlockKind,
    /// Blocks in the stage (`r`).
    pub repeats: usize,
    /// Depthwise kernel size (`k`).
    pub kernel: usize,
    /// Stride of the stage's first block (`s`); the others use 1.
    pub stride: usize,
    /// Expansion ratio (`e`).
    pub exp_ratio: f64,
    /// Output channels (`c`).
    pub out_chans: usize,
}

const fn stage(
    kind: BlockKind,
    repeats: usize,
    kernel: usize,
    stride: usize,
    exp_ratio: f64,
    out_chans: usize,
) -> StageDef {
    StageDef {
        kind,
        repeats,
        kernel,
        stride,
        exp_ratio,
        out_chans,
    }
}

use BlockKind::{DepthwiseSeparable as Ds, InvertedResidual as Ir};

/// The EfficientNet-B0 stage table (shared by Lite0, which drops squeeze-excite).
const B0_STAGES: &[StageDef] = &[
    stage(Ds, 1, 3, 1, 1.0, 16),
    stage(Ir, 2, 3, 2, 6.0, 24),
    stage(Ir, 2, 5, 2, 6.0, 40),
    stage(Ir, 3, 3, 2, 6.0, 80),
    stage(Ir, 3, 5, 1, 6.0, 112),
    stage(Ir, 4, 5, 2, 6.0, 192),
    stage(Ir, 1, 3, 1, 6.0, 320),
];

/// An EfficientNet-family variant as data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EfficientNetArch {
    /// Output channels of `conv_stem` (timm `stem_size`).
    pub stem_chans: usize,
    /// The stages, in order (`blocks.0`, `blocks.1`, ...).
    pub stages: &'static [StageDef],
    /// Squeeze-excite reduction relative to each block's input channels; 0 for none.
    pub se_ratio: f64,
    /// Output channels of `conv_head` (timm `num_features`).
    pub num_features: usize,
    /// Activation, batch-norm epsilon and padding of every conv unit.
    pub style: ConvStyle,
}

/// timm `efficientnet_b0`: SiLU, squeeze-excite 0.25, PyTorch BN eps 1e-5, symmetric padding.
pub const EFFICIENTNET_B0: EfficientNetArch = EfficientNetArch {
    stem_chans: 32,
    stages: B0_STAGES,
    se_ratio: 0.25,
    num_features: 1280,
    style: ConvStyle {
        padding: Padding::Symmetric,
        bn_eps: PYTORCH_BN_EPS,
        act: Activation::Silu,
    },
};

/// timm `tf_efficientnet_lite0` (a port of the TensorFlow checkpoint): ReLU6, no
/// squeeze-excite, TensorFlow BN eps 1e-3 and "SAME" padding. Stem and head widths are fixed
/// in the Lite family (not scaled with the width multiplier; equal to B0's at 1.0).
pub const TF_EFFICIENTNET_LITE0: EfficientNetArch = EfficientNetArch {
    stem_chans: 32,
    stages: B0_STAGES,
    se_ratio: 0.0,
    num_features: 1280,
    style: ConvStyle {
        padding: Padding::TfSame,
        bn_eps: TF_BN_EPS,
        act: Activation::Relu6,
    },
};

/// One block of either kind. The variant name is not part of the stored key.
// Blocks are built once and held in a `Vec`; the size difference costs nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum MbBlock {
    DepthwiseSeparable(DepthwiseSeparable),
    InvertedResidual(InvertedResidual),
}

impl MbBlock {
    fn new(kind: BlockKind, args: &BlockArgs, style: &ConvStyle, device: &Device) -> Self {
        match kind {
            BlockKind::DepthwiseSeparable => {
                MbBlock::DepthwiseSeparable(DepthwiseSeparable::new(args, style, device))
            }
            BlockKind::InvertedResidual => {
                MbBlock::InvertedResidual(InvertedResidual::new(args, style, device))
            }
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            MbBlock::DepthwiseSeparable(b) => b.forward(x),
            MbBlock::InvertedResidual(b) => b.forward(x),
        }
    }
}

/// Options of an EfficientNet beyond its [`EfficientNetArch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EfficientNetOptions {
    /// Logits out of `classifier`; 1 for a binary classifier.
    pub num_classes: usize,
    /// Image channels into `conv_stem`: 1 (grey mammogram) or 3.
    pub in_chans: usize,
    /// Dropout probability on the pooled features before `classifier`, in [0, 1).
    pub drop_rate: f64,
}

/// timm `EfficientNet`.
#[derive(Module, Debug)]
pub struct EfficientNet {
    pub conv_stem: Conv2d,
    pub bn1: BatchNorm,
    /// `blocks.{stage}.{block}`.
    pub blocks: Vec<Vec<MbBlock>>,
    pub conv_head: Conv2d,
    pub bn2: BatchNorm,
    pub drop: Dropout,
    pub classifier: Linear,
    /// Activation after `bn1` and `bn2`.
    #[module(skip)]
    pub act: Activation,
    /// Channels of the last feature map.
    pub num_features: usize,
}

impl EfficientNet {
    /// A freshly initialised EfficientNet (timm `efficientnet_init_weights` for the convs:
    /// normal with variance 2 / fan_out; BN at 1/0; squeeze-excite biases 0; burn's default
    /// `classifier`). Panics on `drop_rate` outside [0, 1); validate with
    /// [`crate::ModelConfig::validate`] first.
    pub fn new(arch: &EfficientNetArch, options: &EfficientNetOptions, device: &Device) -> Self {
        let style = &arch.style;
        let mut in_chans = arch.stem_chans;
        let blocks = arch
            .stages
            .iter()
            .map(|stage| {
                (0..stage.repeats)
                    .map(|i| {
                        let args = BlockArgs {
                            in_chans,
                            out_chans: stage.out_chans,
                            kernel: stage.kernel,
                            stride: if i == 0 { stage.stride } else { 1 },
                            exp_ratio: stage.exp_ratio,
                            se_ratio: arch.se_ratio,
                        };
                        in_chans = stage.out_chans;
                        MbBlock::new(stage.kind, &args, style, device)
                    })
                    .collect()
            })
            .collect();
        Self {
            conv_stem: style.conv(options.in_chans, arch.stem_chans, 3, 2, 1, device),
            bn1: style.norm(arch.stem_chans, device),
            blocks,
            conv_head: style.conv(in_chans, arch.num_features, 1, 1, 1, device),
            bn2: style.norm(arch.num_features, device),
            drop: DropoutConfig::new(options.drop_rate).init(),
            classifier: LinearConfig::new(arch.num_features, options.num_classes).init(device),
            act: style.act,
            num_features: arch.num_features,
        }
    }
}

impl Classifier for EfficientNet {
    fn feature_layers(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.blocks.len())
            .map(|i| format!("blocks.{i}"))
            .collect();
        names.push("conv_head".into());
        names
    }

    fn forward_until(&self, x: Tensor<4>, layer: usize) -> Tensor<4> {
        if layer >= self.blocks.len() {
            return self.forward_features(x);
        }
        let x = self
            .act
            .after_norm(&self.bn1, kernels::conv2d(&self.conv_stem, x));
        self.blocks
            .iter()
            .take(layer + 1)
            .flatten()
            .fold(x, |x, block| block.forward(x))
    }

    fn forward_pyramid(&self, x: Tensor<4>, layers: &[usize]) -> Vec<Tensor<4>> {
        debug_assert!(
            layers.windows(2).all(|w| w[0] < w[1]),
            "layers {layers:?} not increasing"
        );
        if layers.last().is_some_and(|&l| l >= self.blocks.len()) {
            return layers
                .iter()
                .map(|&l| self.forward_until(x.clone(), l))
                .collect();
        }
        let mut x = self
            .act
            .after_norm(&self.bn1, kernels::conv2d(&self.conv_stem, x));
        let mut out = Vec::with_capacity(layers.len());
        for (i, stage) in self
            .blocks
            .iter()
            .enumerate()
            .take(layers.last().map_or(0, |l| l + 1))
        {
            x = stage.iter().fold(x, |x, block| block.forward(x));
            if layers.contains(&i) {
                out.push(x.clone());
            }
        }
        out
    }

    fn forward_after(&self, activations: Tensor<4>, layer: usize) -> Tensor<2> {
        if layer >= self.blocks.len() {
            return self.forward_head(activations);
        }
        let x = self
            .blocks
            .iter()
            .skip(layer + 1)
            .flatten()
            .fold(activations, |x, block| block.forward(x));
        self.forward_head(
            self.act
                .after_norm(&self.bn2, kernels::conv2d(&self.conv_head, x)),
        )
    }

    fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self
            .act
            .after_norm(&self.bn1, kernels::conv2d(&self.conv_stem, x)); // [B, 32, H/2, W/2]
        let x = self
            .blocks
            .iter()
            .flatten()
            .fold(x, |x, block| block.forward(x)); // [B, 320, H/32, W/32]
        self.act
            .after_norm(&self.bn2, kernels::conv2d(&self.conv_head, x)) // [B, 1280, H/32, W/32]
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        let x = global_avg_pool(features); // [B, 1280]
        let x = self.drop.forward(x); // [B, 1280]
        self.classifier.forward(x) // [B, num_classes]
    }

    fn first_conv(&self) -> &Conv2d {
        &self.conv_stem
    }

    fn num_features(&self) -> usize {
        self.num_features
    }
}
