//! MaxViT's convolution block, timm `MbConvBlock` (`timm/models/maxxvit.py`), in the
//! configuration of the `_rw_` models (`_rw_max_cfg`): a pre-norm inverted bottleneck
//! (batch norm, 1x1 expand - BN - SiLU, 3x3 depthwise - BN - SiLU, squeeze-excite, 1x1
//! project) with a residual. A strided block strides in the depthwise conv (`stride_mode='dw'`)
//! and its shortcut is a 2x2 average pool followed, when the width changes, by a 1x1 conv
//! (timm `Downsample2d(pool_type='avg2')`).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::block_args::make_divisible;
use super::conv::{batch_norm, conv2d};
use super::se_module::SeModule;
use crate::kernels::{self, Act, norm_act};

/// timm `Downsample2d(pool_type='avg2')` without bias; key `expand.weight` when present.
#[derive(Module, Debug)]
pub struct Downsample2d {
    pub pool: AvgPool2d,
    pub expand: Option<Conv2d>,
}

impl Downsample2d {
    pub fn new(in_chans: usize, out_chans: usize, device: &Device) -> Self {
        Self {
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            expand: (in_chans != out_chans)
                .then(|| conv2d(in_chans, out_chans, 1, 1, 0, false, device)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.pool.forward(x); // [B, C_in, H/2, W/2]
        match &self.expand {
            Some(conv) => kernels::conv2d(conv, x), // [B, C_out, H/2, W/2]
            None => x,
        }
    }
}

/// How an [`MbConv`] is built (timm `MaxxVitConvCfg` of `_rw_max_cfg`, the parts that vary).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MbConvArgs {
    pub in_chans: usize,
    pub out_chans: usize,
    /// 1 or 2, applied in the depthwise conv.
    pub stride: usize,
    /// Hidden width over the *input* width (`expand_output=False`).
    pub expand_ratio: f64,
    /// Squeeze-excite width over the hidden width (`attn_ratio`).
    pub se_ratio: f64,
}

/// timm `MbConvBlock`; keys `shortcut.expand.weight`, `pre_norm.*`, `conv1_1x1.weight`,
/// `norm1.*`, `conv2_kxk.weight`, `norm2.*`, `se.fc{1,2}.*`, `conv3_1x1.weight`.
#[derive(Module, Debug)]
pub struct MbConv {
    /// Present only when the block strides.
    pub shortcut: Option<Downsample2d>,
    pub pre_norm: BatchNorm,
    pub conv1_1x1: Conv2d,
    pub norm1: BatchNorm,
    pub conv2_kxk: Conv2d,
    pub norm2: BatchNorm,
    pub se: SeModule,
    pub conv3_1x1: Conv2d,
}

impl MbConv {
    /// Panics on a stride other than 1 or 2.
    pub fn new(args: &MbConvArgs, device: &Device) -> Self {
        assert!(
            matches!(args.stride, 1 | 2),
            "MBConv stride must be 1 or 2, got {}",
            args.stride
        );
        assert!(
            args.stride == 2 || args.in_chans == args.out_chans,
            "an unstrided MBConv keeps its width ({} -> {})",
            args.in_chans,
            args.out_chans
        );
        let mid = make_divisible(args.in_chans as f64 * args.expand_ratio, 8);
        let se = (args.se_ratio * mid as f64) as usize; // Python int(): truncation
        Self {
            shortcut: (args.stride == 2)
                .then(|| Downsample2d::new(args.in_chans, args.out_chans, device)),
            pre_norm: batch_norm(args.in_chans, false, device),
            conv1_1x1: conv2d(args.in_chans, mid, 1, 1, 0, false, device),
            norm1: batch_norm(mid, false, device),
            conv2_kxk: depthwise3x3(mid, args.stride, device),
            norm2: batch_norm(mid, false, device),
            se: SeModule::new(mid, se, device),
            conv3_1x1: conv2d(mid, args.out_chans, 1, 1, 0, false, device),
        }
    }

    /// `[B, C_in, H, W]` to `[B, C_out, H / s, W / s]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.shortcut {
            Some(down) => down.forward(x.clone()), // [B, C_out, H/s, W/s]
            None => x.clone(),
        };
        let y = norm_act(&self.pre_norm, x, Act::Identity); // [B, C_in, H, W]
        // [B, M, H, W]
        let y = norm_act(&self.norm1, kernels::conv2d(&self.conv1_1x1, y), Act::Silu);
        // [B, M, H/s, W/s]
        let y = norm_act(&self.norm2, kernels::conv2d(&self.conv2_kxk, y), Act::Silu);
        let y = self.se.forward(y); // [B, M, H/s, W/s]
        kernels::conv2d(&self.conv3_1x1, y) + shortcut // [B, C_out, H/s, W/s]
    }
}

/// A 3x3 depthwise conv, padding 1 (timm `create_conv2d` with `padding=''`: `get_padding(3,
/// stride)` is 1 at strides 1 and 2).
fn depthwise3x3(channels: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([channels, channels], [3, 3])
        .with_stride([stride, stride])
        .with_groups(channels)
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}
