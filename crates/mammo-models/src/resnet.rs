//! ResNet (He et al., "Deep Residual Learning for Image Recognition", 2015) as timm builds it
//! in `timm/models/resnet.py`: the v1.5 layout (stride on the 3x3 of a bottleneck), a 7x7/2
//! stem conv + BN + ReLU + 3x3/2 max pool, four stages, and a 1x1-conv + BN shortcut where the
//! shape changes.
//!
//! Field names are timm's attribute names, so the module paths are the timm state-dict keys
//! (`layer1.0.downsample.1.running_var`, `fc.weight`, ...); the [`Block`] enum's variant name is
//! skipped when weights are stored (see [`crate::load_timm_safetensors`]).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::classifier::Classifier;
use crate::kernels::{self, Act, max_pool2d, norm_act};
use crate::layers::{batch_norm, conv2d, global_avg_pool, max_pool_3x3_s2};

/// Which residual block a ResNet stacks (timm's `block` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convs; ResNet-18/34. Expansion 1.
    Basic,
    /// 1x1 reduce, 3x3, 1x1 expand; ResNet-50 and deeper. Expansion 4.
    Bottleneck,
}

impl BlockKind {
    /// Output channels of a block relative to its `planes`.
    pub const fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// A ResNet variant as data: the block type and the number of blocks per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResNetArch {
    /// Residual block used in every stage.
    pub block: BlockKind,
    /// Blocks in `layer1` .. `layer4`.
    pub layers: [usize; 4],
}

/// timm `resnet18`.
pub const RESNET18: ResNetArch = ResNetArch {
    block: BlockKind::Basic,
    layers: [2, 2, 2, 2],
};
/// timm `resnet34`.
pub const RESNET34: ResNetArch = ResNetArch {
    block: BlockKind::Basic,
    layers: [3, 4, 6, 3],
};
/// timm `resnet50`.
pub const RESNET50: ResNetArch = ResNetArch {
    block: BlockKind::Bottleneck,
    layers: [3, 4, 6, 3],
};
/// timm `resnet152`.
pub const RESNET152: ResNetArch = ResNetArch {
    block: BlockKind::Bottleneck,
    layers: [3, 8, 36, 3],
};

/// Stem width and per-stage `planes`, as in timm (`channels=(64, 128, 256, 512)`).
const STEM_WIDTH: usize = 64;
const STAGE_PLANES: [usize; 4] = [64, 128, 256, 512];
const STAGE_STRIDES: [usize; 4] = [1, 2, 2, 2];

/// The shortcut projection, timm `downsample_conv`: `Sequential(conv1x1/stride, BN)`, so its
/// keys are `downsample.0.weight` and `downsample.1.*`.
type Downsample = (Conv2d, BatchNorm);

fn downsample(in_chans: usize, out_chans: usize, stride: usize, device: &Device) -> Downsample {
    (
        conv2d(in_chans, out_chans, 1, stride, 0, false, device),
        batch_norm(out_chans, false, device),
    )
}

fn shortcut(downsample: &Option<Downsample>, x: Tensor<4>) -> Tensor<4> {
    match downsample {
        // [B, C_out, H/s, W/s]
        Some((conv, bn)) => norm_act(bn, kernels::conv2d(conv, x), Act::Identity),
        None => x,
    }
}

/// timm `BasicBlock`: conv3x3(stride) - BN - ReLU - conv3x3 - BN, plus shortcut, ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub downsample: Option<Downsample>,
}

impl BasicBlock {
    fn new(
        in_chans: usize,
        planes: usize,
        stride: usize,
        zero_init_last: bool,
        device: &Device,
    ) -> Self {
        let out = planes * BlockKind::Basic.expansion();
        Self {
            conv1: conv2d(in_chans, planes, 3, stride, 1, false, device),
            bn1: batch_norm(planes, false, device),
            conv2: conv2d(planes, out, 3, 1, 1, false, device),
            bn2: batch_norm(out, zero_init_last, device),
            downsample: (stride != 1 || in_chans != out)
                .then(|| downsample(in_chans, out, stride, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = norm_act(
            &self.bn1,
            kernels::conv2d(&self.conv1, x.clone()),
            Act::Relu,
        ); // [B, P, H/s, W/s]
        // [B, P, H/s, W/s]
        let y = norm_act(&self.bn2, kernels::conv2d(&self.conv2, y), Act::Identity);
        relu(y + shortcut(&self.downsample, x)) // [B, P, H/s, W/s]
    }
}

/// timm `Bottleneck`: conv1x1 - BN - ReLU - conv3x3(stride) - BN - ReLU - conv1x1 - BN, plus
/// shortcut, ReLU.
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    fn new(
        in_chans: usize,
        planes: usize,
        stride: usize,
        zero_init_last: bool,
        device: &Device,
    ) -> Self {
        let out = planes * BlockKind::Bottleneck.expansion();
        Self {
            conv1: conv2d(in_chans, planes, 1, 1, 0, false, device),
            bn1: batch_norm(planes, false, device),
            conv2: conv2d(planes, planes, 3, stride, 1, false, device),
            bn2: batch_norm(planes, false, device),
            conv3: conv2d(planes, out, 1, 1, 0, false, device),
            bn3: batch_norm(out, zero_init_last, device),
            downsample: (stride != 1 || in_chans != out)
                .then(|| downsample(in_chans, out, stride, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = norm_act(
            &self.bn1,
            kernels::conv2d(&self.conv1, x.clone()),
            Act::Relu,
        ); // [B, P, H, W]
        let y = norm_act(&self.bn2, kernels::conv2d(&self.conv2, y), Act::Relu); // [B, P, H/s, W/s]
        // [B, 4P, H/s, W/s]
        let y = norm_act(&self.bn3, kernels::conv2d(&self.conv3, y), Act::Identity);
        relu(y + shortcut(&self.downsample, x)) // [B, 4P, H/s, W/s]
    }
}

/// One residual block of either kind. The variant name is not part of the stored key.
// Blocks are built once and held in a `Vec`; the size difference costs nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Block {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl Block {
    fn new(
        kind: BlockKind,
        in_chans: usize,
        planes: usize,
        stride: usize,
        zero_init_last: bool,
        device: &Device,
    ) -> Self {
        match kind {
            BlockKind::Basic => Block::Basic(BasicBlock::new(
                in_chans,
                planes,
                stride,
                zero_init_last,
                device,
            )),
            BlockKind::Bottleneck => Block::Bottleneck(Bottleneck::new(
                in_chans,
                planes,
                stride,
                zero_init_last,
                device,
            )),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Block::Basic(b) => b.forward(x),
            Block::Bottleneck(b) => b.forward(x),
        }
    }
}

/// Options of a ResNet beyond its [`ResNetArch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResNetOptions {
    /// Logits out of `fc`; 1 for a binary classifier.
    pub num_classes: usize,
    /// Image channels into `conv1`: 1 (grey mammogram) or 3.
    pub in_chans: usize,
    /// Dropout probability on the pooled features before `fc`, in [0, 1).
    pub drop_rate: f64,
    /// Start the last BN of every block at zero scale (timm default `zero_init_last=True`).
    pub zero_init_last: bool,
}

/// timm `ResNet`.
#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<Block>,
    pub layer2: Vec<Block>,
    pub layer3: Vec<Block>,
    pub layer4: Vec<Block>,
    pub drop: Dropout,
    pub fc: Linear,
    /// Channels of the last feature map.
    pub num_features: usize,
}

impl ResNet {
    /// A freshly initialised ResNet (timm `init_weights`: kaiming-normal fan-out convs, BN at
    /// 1/0, PyTorch-default `fc`). Panics on `drop_rate` outside [0, 1); validate with
    /// [`crate::ModelConfig::validate`] first.
    pub fn new(arch: &ResNetArch, options: &ResNetOptions, device: &Device) -> Self {
        let mut in_chans = STEM_WIDTH;
        let mut stages: Vec<Vec<Block>> = Vec::with_capacity(4);
        for ((&depth, &planes), &stride) in
            arch.layers.iter().zip(&STAGE_PLANES).zip(&STAGE_STRIDES)
        {
            let mut blocks = Vec::with_capacity(depth);
            for i in 0..depth {
                let block_stride = if i == 0 { stride } else { 1 };
                blocks.push(Block::new(
                    arch.block,
                    in_chans,
                    planes,
                    block_stride,
                    options.zero_init_last,
                    device,
                ));
                in_chans = planes * arch.block.expansion();
            }
            stages.push(blocks);
        }
        let num_features = in_chans;
        let [layer1, layer2, layer3, layer4] =
            <[Vec<Block>; 4]>::try_from(stages).expect("four stages");
        Self {
            conv1: conv2d(options.in_chans, STEM_WIDTH, 7, 2, 3, false, device),
            bn1: batch_norm(STEM_WIDTH, false, device),
            maxpool: max_pool_3x3_s2(),
            layer1,
            layer2,
            layer3,
            layer4,
            drop: DropoutConfig::new(options.drop_rate).init(),
            fc: LinearConfig::new(num_features, options.num_classes).init(device),
            num_features,
        }
    }
}

impl ResNet {
    fn stages(&self) -> [&[Block]; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }

    /// `conv1`, `bn1`, ReLU and the 3x3/2 max pool: `[B, 64, H/4, W/4]`.
    fn stem(&self, x: Tensor<4>) -> Tensor<4> {
        // [B, 64, H/2, W/2]
        let x = norm_act(&self.bn1, kernels::conv2d(&self.conv1, x), Act::Relu);
        max_pool2d(&self.maxpool, x)
    }
}

fn run_stage(blocks: &[Block], x: Tensor<4>) -> Tensor<4> {
    blocks.iter().fold(x, |x, block| block.forward(x))
}

impl Classifier for ResNet {
    fn feature_layers(&self) -> Vec<String> {
        ["layer1", "layer2", "layer3", "layer4"]
            .map(String::from)
            .to_vec()
    }

    fn forward_until(&self, x: Tensor<4>, layer: usize) -> Tensor<4> {
        let x = self.stem(x);
        self.stages()
            .iter()
            .take(layer + 1)
            .fold(x, |x, stage| run_stage(stage, x))
    }

    fn forward_pyramid(&self, x: Tensor<4>, layers: &[usize]) -> Vec<Tensor<4>> {
        debug_assert!(
            layers.windows(2).all(|w| w[0] < w[1]),
            "layers {layers:?} not increasing"
        );
        let last = layers.last().copied().unwrap_or(0).min(3);
        let mut x = self.stem(x);
        let mut out = Vec::with_capacity(layers.len());
        for (i, stage) in self.stages().iter().enumerate().take(last + 1) {
            x = run_stage(stage, x);
            if layers.contains(&i) {
                out.push(x.clone());
            }
        }
        out
    }

    fn forward_after(&self, activations: Tensor<4>, layer: usize) -> Tensor<2> {
        let x = self
            .stages()
            .iter()
            .skip(layer + 1)
            .fold(activations, |x, stage| run_stage(stage, x));
        self.forward_head(x)
    }

    fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.stem(x); // [B, 64, H/4, W/4]
        let x = run_stage(&self.layer1, x); // [B, 64e, H/4, W/4]
        let x = run_stage(&self.layer2, x); // [B, 128e, H/8, W/8]
        let x = run_stage(&self.layer3, x); // [B, 256e, H/16, W/16]
        run_stage(&self.layer4, x) // [B, 512e, H/32, W/32]
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        let x = global_avg_pool(features); // [B, 512e]
        let x = self.drop.forward(x); // [B, 512e]
        self.fc.forward(x) // [B, num_classes]
    }

    fn first_conv(&self) -> &Conv2d {
        &self.conv1
    }

    fn num_features(&self) -> usize {
        self.num_features
    }
}
