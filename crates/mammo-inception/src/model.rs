//! pytorch-fid's `InceptionV3(output_blocks=[3], resize_input=True, normalize_input=True,
//! use_fid_inception=True)`: torchvision's Inception-v3 layout with the FID blocks, the
//! classifier dropped, cut into pytorch-fid's four output blocks.

// Field names are torchvision's attribute names (`Conv2d_1a_3x3`, `Mixed_5b`), which are the
// state-dict keys of pytorch-fid's weights.
#![allow(non_snake_case)]

use burn::module::Module;
use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use crate::blocks::max_pool_3x3_s2;
use crate::blocks::{
    BasicConv2d, EPool, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE,
};

/// Length of a pool3 feature vector, what FID is computed on.
pub const FEATURE_DIM: usize = 2048;

/// Side of the square input the network sees; every image is resized to it.
pub const INPUT_SIZE: usize = 299;

/// One of pytorch-fid's four output blocks (`InceptionV3.BLOCK_INDEX_BY_DIM`); each starts
/// where the previous one ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Block {
    /// Block 0, input to the first max pool: `[N, 64, 73, 73]`.
    MaxPool1,
    /// Block 1, to the second max pool: `[N, 192, 35, 35]`.
    MaxPool2,
    /// Block 2, Mixed_5b..Mixed_6e, the input of the (absent) auxiliary classifier:
    /// `[N, 768, 17, 17]`.
    PreAux,
    /// Block 3, Mixed_7a..Mixed_7c and the global average pool: `[N, 2048, 1, 1]`.
    Pool3,
}

impl Block {
    /// The blocks in order.
    pub const ALL: [Block; 4] = [
        Block::MaxPool1,
        Block::MaxPool2,
        Block::PreAux,
        Block::Pool3,
    ];

    /// Channels of the block's output.
    pub const fn channels(self) -> usize {
        match self {
            Block::MaxPool1 => 64,
            Block::MaxPool2 => 192,
            Block::PreAux => 768,
            Block::Pool3 => FEATURE_DIM,
        }
    }
}

/// pytorch-fid's FID Inception-v3 up to the pool3 features.
///
/// Module paths are the keys of pytorch-fid's weight file `pt_inception-2015-12-05-6726825d.pth`
/// (`Mixed_6b.branch7x7dbl_3.bn.running_var`, ...); load them with
/// [`crate::load_safetensors`]. The forward pass uses the batch-norm running statistics on a
/// device without autodiff; on an autodiff device call `.valid()` first.
#[derive(Module, Debug)]
pub struct FidInception {
    pub Conv2d_1a_3x3: BasicConv2d,
    pub Conv2d_2a_3x3: BasicConv2d,
    pub Conv2d_2b_3x3: BasicConv2d,
    pub Conv2d_3b_1x1: BasicConv2d,
    pub Conv2d_4a_3x3: BasicConv2d,
    pub Mixed_5b: InceptionA,
    pub Mixed_5c: InceptionA,
    pub Mixed_5d: InceptionA,
    pub Mixed_6a: InceptionB,
    pub Mixed_6b: InceptionC,
    pub Mixed_6c: InceptionC,
    pub Mixed_6d: InceptionC,
    pub Mixed_6e: InceptionC,
    pub Mixed_7a: InceptionD,
    pub Mixed_7b: InceptionE,
    pub Mixed_7c: InceptionE,
}

impl FidInception {
    /// The network with untrained weights (burn's layer defaults, batch norm at 1/0 with
    /// running statistics 0/1). Only useful as the target of a load.
    pub fn new(device: &Device) -> Self {
        let d = device;
        Self {
            Conv2d_1a_3x3: BasicConv2d::new(3, 32, [3, 3], 2, [0, 0], d),
            Conv2d_2a_3x3: BasicConv2d::new(32, 32, [3, 3], 1, [0, 0], d),
            Conv2d_2b_3x3: BasicConv2d::new(32, 64, [3, 3], 1, [1, 1], d),
            Conv2d_3b_1x1: BasicConv2d::new(64, 80, [1, 1], 1, [0, 0], d),
            Conv2d_4a_3x3: BasicConv2d::new(80, 192, [3, 3], 1, [0, 0], d),
            Mixed_5b: InceptionA::new(192, 32, d),
            Mixed_5c: InceptionA::new(256, 64, d),
            Mixed_5d: InceptionA::new(288, 64, d),
            Mixed_6a: InceptionB::new(288, d),
            Mixed_6b: InceptionC::new(768, 128, d),
            Mixed_6c: InceptionC::new(768, 160, d),
            Mixed_6d: InceptionC::new(768, 160, d),
            Mixed_6e: InceptionC::new(768, 192, d),
            Mixed_7a: InceptionD::new(768, d),
            Mixed_7b: InceptionE::new(1280, EPool::Avg, d),
            Mixed_7c: InceptionE::new(2048, EPool::Max, d),
        }
    }

    /// Pool3 features of `images`, `[N, 3, H, W]` RGB in [0, 1] at any size: resized to 299 x
    /// 299 and scaled to [-1, 1] ([`preprocess`]), then blocks 0 to 3. Returns `[N, 2048]`,
    /// what pytorch-fid's `InceptionV3()(images)[0].squeeze(3).squeeze(2)` returns.
    ///
    /// Grey images must be repeated to three channels first, as pytorch-fid users do.
    ///
    /// # Panics
    ///
    /// If `images` does not have 3 channels.
    pub fn pool3(&self, images: Tensor<4>) -> Tensor<2> {
        let [n, c, _, _] = images.dims();
        assert_eq!(
            c, 3,
            "FID Inception takes RGB images [N, 3, H, W], got {c} channel(s)"
        );
        let x = Block::ALL
            .into_iter()
            .fold(preprocess(images), |x, block| self.forward_block(block, x)); // [N, 2048, 1, 1]
        x.reshape([n, FEATURE_DIM]) // [N, 2048]
    }

    /// One of pytorch-fid's output blocks, applied to the previous block's output (block 0
    /// takes the [`preprocess`]ed input).
    pub fn forward_block(&self, block: Block, x: Tensor<4>) -> Tensor<4> {
        match block {
            Block::MaxPool1 => {
                let x = self.Conv2d_1a_3x3.forward(x); // [N, 32, 149, 149]
                let x = self.Conv2d_2a_3x3.forward(x); // [N, 32, 147, 147]
                let x = self.Conv2d_2b_3x3.forward(x); // [N, 64, 147, 147]
                max_pool_3x3_s2(x) // [N, 64, 73, 73]
            }
            Block::MaxPool2 => {
                let x = self.Conv2d_3b_1x1.forward(x); // [N, 80, 73, 73]
                let x = self.Conv2d_4a_3x3.forward(x); // [N, 192, 71, 71]
                max_pool_3x3_s2(x) // [N, 192, 35, 35]
            }
            Block::PreAux => {
                let x = self.Mixed_5b.forward(x); // [N, 256, 35, 35]
                let x = self.Mixed_5c.forward(x); // [N, 288, 35, 35]
                let x = self.Mixed_5d.forward(x); // [N, 288, 35, 35]
                let x = self.Mixed_6a.forward(x); // [N, 768, 17, 17]
                let x = self.Mixed_6b.forward(x);
                let x = self.Mixed_6c.forward(x);
                let x = self.Mixed_6d.forward(x);
                self.Mixed_6e.forward(x) // [N, 768, 17, 17]
            }
            Block::Pool3 => {
                let x = self.Mixed_7a.forward(x); // [N, 1280, 8, 8]
                let x = self.Mixed_7b.forward(x); // [N, 2048, 8, 8]
                let x = self.Mixed_7c.forward(x); // [N, 2048, 8, 8]
                adaptive_avg_pool2d(x, [1, 1]) // [N, 2048, 1, 1]
            }
        }
    }
}

/// pytorch-fid's input transform: `F.interpolate(x, size=(299, 299), mode='bilinear',
/// align_corners=False)` (no antialiasing), then `2 * x - 1`. `[N, C, H, W]` in [0, 1] to
/// `[N, C, 299, 299]` in [-1, 1].
pub fn preprocess(images: Tensor<4>) -> Tensor<4> {
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(false)
        .with_output_size([INPUT_SIZE, INPUT_SIZE]);
    let x = interpolate(images, options); // [N, C, 299, 299]
    x.mul_scalar(2.0).sub_scalar(1.0)
}
