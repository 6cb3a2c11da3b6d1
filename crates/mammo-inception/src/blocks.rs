//! The units of the FID Inception-v3: torchvision's `BasicConv2d` and `InceptionA`..`E`
//! (`torchvision/models/inception.py`) with pytorch-fid's patches (`pytorch_fid/inception.py`,
//! `FIDInceptionA`, `FIDInceptionC`, `FIDInceptionE_1`, `FIDInceptionE_2`).
//!
//! Field names are torchvision's attribute names, so module paths are the state-dict keys
//! (`branch7x7dbl_3.bn.running_var`, ...).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};

/// Batch-norm epsilon of every `BasicConv2d` (`nn.BatchNorm2d(out_channels, eps=0.001)`), the
/// TensorFlow value the weights were trained with.
pub const BN_EPS: f64 = 1e-3;

/// torchvision `BasicConv2d`: conv without bias, batch norm (eps 0.001), ReLU. Keys
/// `conv.weight`, `bn.{weight,bias,running_mean,running_var}`.
#[derive(Module, Debug)]
pub struct BasicConv2d {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl BasicConv2d {
    /// `BasicConv2d(in_chans, out_chans, kernel_size=kernel, stride=stride, padding=padding)`,
    /// kernel and padding as `[height, width]`. Weights start at burn's defaults (PyTorch's
    /// layer defaults; pytorch-fid builds with `init_weights=False`) until loaded.
    pub fn new(
        in_chans: usize,
        out_chans: usize,
        kernel: [usize; 2],
        stride: usize,
        padding: [usize; 2],
        device: &Device,
    ) -> Self {
        let [ph, pw] = padding;
        Self {
            conv: Conv2dConfig::new([in_chans, out_chans], kernel)
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(out_chans)
                .with_epsilon(BN_EPS)
                .init(device),
        }
    }

    /// A square `k x k` convolution with stride 1 and "same" padding `k / 2`.
    fn square(in_chans: usize, out_chans: usize, k: usize, device: &Device) -> Self {
        Self::new(in_chans, out_chans, [k, k], 1, [k / 2, k / 2], device)
    }

    /// A `1 x k` convolution padded `(0, k / 2)`.
    fn row(in_chans: usize, out_chans: usize, k: usize, device: &Device) -> Self {
        Self::new(in_chans, out_chans, [1, k], 1, [0, k / 2], device)
    }

    /// A `k x 1` convolution padded `(k / 2, 0)`.
    fn column(in_chans: usize, out_chans: usize, k: usize, device: &Device) -> Self {
        Self::new(in_chans, out_chans, [k, 1], 1, [k / 2, 0], device)
    }

    /// A 3x3 convolution with stride 2 and no padding (the grid reductions).
    fn reduce(in_chans: usize, out_chans: usize, device: &Device) -> Self {
        Self::new(in_chans, out_chans, [3, 3], 2, [0, 0], device)
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x))) // [B, C_out, H', W']
    }
}

/// `F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)`: pytorch-fid's
/// patch ("Tensorflow's average pool does not use the padded zero's in its average
/// calculation"), so a border pixel averages only the 4 or 6 pixels inside the image.
pub fn avg_pool_3x3_exclude_pad(x: Tensor<4>) -> Tensor<4> {
    let options = AvgPoolOptions::new([3, 3])
        .with_stride([1, 1])
        .with_padding([1, 1])
        .with_count_include_pad(false);
    avg_pool2d(x, options) // [B, C, H, W]
}

/// `F.max_pool2d(x, kernel_size=3, stride=1, padding=1)`.
pub fn max_pool_3x3_same(x: Tensor<4>) -> Tensor<4> {
    let options = MaxPoolOptions::new([3, 3])
        .with_stride([1, 1])
        .with_padding([1, 1]);
    max_pool2d(x, options) // [B, C, H, W]
}

/// `nn.MaxPool2d(kernel_size=3, stride=2)` / `F.max_pool2d(x, kernel_size=3, stride=2)`: no
/// padding, floor mode.
pub fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2])) // [B, C, (H-3)/2+1, ..]
}

/// `FIDInceptionA` (Mixed_5b/5c/5d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg pool (padding
/// excluded)-1x1; `224 + pool_features` output channels.
#[derive(Module, Debug)]
pub struct InceptionA {
    pub branch1x1: BasicConv2d,
    pub branch5x5_1: BasicConv2d,
    pub branch5x5_2: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3: BasicConv2d,
    pub branch_pool: BasicConv2d,
}

impl InceptionA {
    pub fn new(in_chans: usize, pool_features: usize, device: &Device) -> Self {
        Self {
            branch1x1: BasicConv2d::square(in_chans, 64, 1, device),
            branch5x5_1: BasicConv2d::square(in_chans, 48, 1, device),
            branch5x5_2: BasicConv2d::square(48, 64, 5, device),
            branch3x3dbl_1: BasicConv2d::square(in_chans, 64, 1, device),
            branch3x3dbl_2: BasicConv2d::square(64, 96, 3, device),
            branch3x3dbl_3: BasicConv2d::square(96, 96, 3, device),
            branch_pool: BasicConv2d::square(in_chans, pool_features, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone()); // [B, 64, H, W]
        let b5 = self.branch5x5_1.forward(x.clone());
        let b5 = self.branch5x5_2.forward(b5); // [B, 64, H, W]
        let b3 = self.branch3x3dbl_1.forward(x.clone());
        let b3 = self.branch3x3dbl_2.forward(b3);
        let b3 = self.branch3x3dbl_3.forward(b3); // [B, 96, H, W]
        let bp = self.branch_pool.forward(avg_pool_3x3_exclude_pad(x)); // [B, P, H, W]
        Tensor::cat(vec![b1, b5, b3, bp], 1) // [B, 224 + P, H, W]
    }
}

/// torchvision `InceptionB` (Mixed_6a, unpatched): 3x3/2 | 1x1-3x3-3x3/2 | max pool 3x3/2;
/// `in_chans + 480` output channels at half the resolution.
#[derive(Module, Debug)]
pub struct InceptionB {
    pub branch3x3: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    pub fn new(in_chans: usize, device: &Device) -> Self {
        Self {
            branch3x3: BasicConv2d::reduce(in_chans, 384, device),
            branch3x3dbl_1: BasicConv2d::square(in_chans, 64, 1, device),
            branch3x3dbl_2: BasicConv2d::square(64, 96, 3, device),
            branch3x3dbl_3: BasicConv2d::reduce(96, 96, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone()); // [B, 384, H', W']
        let bd = self.branch3x3dbl_1.forward(x.clone());
        let bd = self.branch3x3dbl_2.forward(bd);
        let bd = self.branch3x3dbl_3.forward(bd); // [B, 96, H', W']
        let bp = max_pool_3x3_s2(x); // [B, C, H', W']
        Tensor::cat(vec![b3, bd, bp], 1) // [B, 480 + C, H', W']
    }
}

/// `FIDInceptionC` (Mixed_6b..6e): 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avg pool (padding
/// excluded)-1x1; 768 output channels.
#[derive(Module, Debug)]
pub struct InceptionC {
    pub branch1x1: BasicConv2d,
    pub branch7x7_1: BasicConv2d,
    pub branch7x7_2: BasicConv2d,
    pub branch7x7_3: BasicConv2d,
    pub branch7x7dbl_1: BasicConv2d,
    pub branch7x7dbl_2: BasicConv2d,
    pub branch7x7dbl_3: BasicConv2d,
    pub branch7x7dbl_4: BasicConv2d,
    pub branch7x7dbl_5: BasicConv2d,
    pub branch_pool: BasicConv2d,
}

impl InceptionC {
    pub fn new(in_chans: usize, channels_7x7: usize, device: &Device) -> Self {
        let c7 = channels_7x7;
        Self {
            branch1x1: BasicConv2d::square(in_chans, 192, 1, device),
            branch7x7_1: BasicConv2d::square(in_chans, c7, 1, device),
            branch7x7_2: BasicConv2d::row(c7, c7, 7, device),
            branch7x7_3: BasicConv2d::column(c7, 192, 7, device),
            branch7x7dbl_1: BasicConv2d::square(in_chans, c7, 1, device),
            branch7x7dbl_2: BasicConv2d::column(c7, c7, 7, device),
            branch7x7dbl_3: BasicConv2d::row(c7, c7, 7, device),
            branch7x7dbl_4: BasicConv2d::column(c7, c7, 7, device),
            branch7x7dbl_5: BasicConv2d::row(c7, 192, 7, device),
            branch_pool: BasicConv2d::square(in_chans, 192, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone()); // [B, 192, H, W]
        let b7 = self.branch7x7_1.forward(x.clone());
        let b7 = self.branch7x7_2.forward(b7);
        let b7 = self.branch7x7_3.forward(b7); // [B, 192, H, W]
        let bd = self.branch7x7dbl_1.forward(x.clone());
        let bd = self.branch7x7dbl_2.forward(bd);
        let bd = self.branch7x7dbl_3.forward(bd);
        let bd = self.branch7x7dbl_4.forward(bd);
        let bd = self.branch7x7dbl_5.forward(bd); // [B, 192, H, W]
        let bp = self.branch_pool.forward(avg_pool_3x3_exclude_pad(x)); // [B, 192, H, W]
        Tensor::cat(vec![b1, b7, bd, bp], 1) // [B, 768, H, W]
    }
}

/// torchvision `InceptionD` (Mixed_7a, unpatched): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max pool
/// 3x3/2; `in_chans + 512` output channels at half the resolution.
#[derive(Module, Debug)]
pub struct InceptionD {
    pub branch3x3_1: BasicConv2d,
    pub branch3x3_2: BasicConv2d,
    pub branch7x7x3_1: BasicConv2d,
    pub branch7x7x3_2: BasicConv2d,
    pub branch7x7x3_3: BasicConv2d,
    pub branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    pub fn new(in_chans: usize, device: &Device) -> Self {
        Self {
            branch3x3_1: BasicConv2d::square(in_chans, 192, 1, device),
            branch3x3_2: BasicConv2d::reduce(192, 320, device),
            branch7x7x3_1: BasicConv2d::square(in_chans, 192, 1, device),
            branch7x7x3_2: BasicConv2d::row(192, 192, 7, device),
            branch7x7x3_3: BasicConv2d::column(192, 192, 7, device),
            branch7x7x3_4: BasicConv2d::reduce(192, 192, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = self.branch3x3_2.forward(b3); // [B, 320, H', W']
        let b7 = self.branch7x7x3_1.forward(x.clone());
        let b7 = self.branch7x7x3_2.forward(b7);
        let b7 = self.branch7x7x3_3.forward(b7);
        let b7 = self.branch7x7x3_4.forward(b7); // [B, 192, H', W']
        let bp = max_pool_3x3_s2(x); // [B, C, H', W']
        Tensor::cat(vec![b3, b7, bp], 1) // [B, 512 + C, H', W']
    }
}

/// The pooling in an [`InceptionE`]'s pool branch, the one difference between pytorch-fid's
/// two E blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EPool {
    /// `FIDInceptionE_1` (Mixed_7b): 3x3/1 average pool, padding excluded.
    Avg,
    /// `FIDInceptionE_2` (Mixed_7c): 3x3/1 max pool, as in the TensorFlow graph (pytorch-fid:
    /// "likely an error in this specific Inception implementation").
    Max,
}

/// `FIDInceptionE_1` / `FIDInceptionE_2` (Mixed_7b/7c): 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3,
/// 3x1) | pool-1x1; 2048 output channels.
#[derive(Module, Debug)]
pub struct InceptionE {
    pub branch1x1: BasicConv2d,
    pub branch3x3_1: BasicConv2d,
    pub branch3x3_2a: BasicConv2d,
    pub branch3x3_2b: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3a: BasicConv2d,
    pub branch3x3dbl_3b: BasicConv2d,
    pub branch_pool: BasicConv2d,
    /// Pooling before `branch_pool`.
    #[module(skip)]
    pub pool: EPool,
}

impl InceptionE {
    pub fn new(in_chans: usize, pool: EPool, device: &Device) -> Self {
        Self {
            branch1x1: BasicConv2d::square(in_chans, 320, 1, device),
            branch3x3_1: BasicConv2d::square(in_chans, 384, 1, device),
            branch3x3_2a: BasicConv2d::row(384, 384, 3, device),
            branch3x3_2b: BasicConv2d::column(384, 384, 3, device),
            branch3x3dbl_1: BasicConv2d::square(in_chans, 448, 1, device),
            branch3x3dbl_2: BasicConv2d::square(448, 384, 3, device),
            branch3x3dbl_3a: BasicConv2d::row(384, 384, 3, device),
            branch3x3dbl_3b: BasicConv2d::column(384, 384, 3, device),
            branch_pool: BasicConv2d::square(in_chans, 192, 1, device),
            pool,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone()); // [B, 320, H, W]
        let b3 = self.branch3x3_1.forward(x.clone()); // [B, 384, H, W]
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        ); // [B, 768, H, W]
        let bd = self.branch3x3dbl_1.forward(x.clone());
        let bd = self.branch3x3dbl_2.forward(bd); // [B, 384, H, W]
        let bd = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(bd.clone()),
                self.branch3x3dbl_3b.forward(bd),
            ],
            1,
        ); // [B, 768, H, W]
        let pooled = match self.pool {
            EPool::Avg => avg_pool_3x3_exclude_pad(x),
            EPool::Max => max_pool_3x3_same(x),
        };
        let bp = self.branch_pool.forward(pooled); // [B, 192, H, W]
        Tensor::cat(vec![b1, b3, bd, bp], 1) // [B, 2048, H, W]
    }
}
