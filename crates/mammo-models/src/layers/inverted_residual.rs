//! The inverted residual block, "MBConv" (MobileNet-V2, Sandler et al. 2018; EfficientNet),
//! timm `InvertedResidual` (`timm/models/_efficientnet_blocks.py`): pointwise expansion - BN -
//! act, depthwise conv - BN - act, optional squeeze-excite, pointwise linear projection - BN
//! (no activation), residual when the shape is kept.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::block_args::BlockArgs;
use super::conv::ConvStyle;
use super::squeeze_excite::SqueezeExcite;
use crate::kernels::{self, Act, norm_act};

/// timm `InvertedResidual`; keys `conv_pw`, `bn1`, `conv_dw`, `bn2`, `se.*`, `conv_pwl`, `bn3`.
///
/// Stochastic depth (timm `drop_path_rate`) is not implemented: the residual is always added
/// in full, which is what timm does in eval mode and with its default rate of 0.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub conv_pw: Conv2d,
    pub bn1: BatchNorm,
    pub conv_dw: Conv2d,
    pub bn2: BatchNorm,
    pub se: Option<SqueezeExcite>,
    pub conv_pwl: Conv2d,
    pub bn3: BatchNorm,
    #[module(skip)]
    pub style: ConvStyle,
    pub has_skip: bool,
}

impl InvertedResidual {
    pub fn new(args: &BlockArgs, style: &ConvStyle, device: &Device) -> Self {
        let mid = args.mid_chans();
        Self {
            conv_pw: style.conv(args.in_chans, mid, 1, 1, 1, device),
            bn1: style.norm(mid, device),
            conv_dw: style.conv(mid, mid, args.kernel, args.stride, mid, device),
            bn2: style.norm(mid, device),
            se: args
                .se_chans()
                .map(|r| SqueezeExcite::new(mid, r, style.act, device)),
            conv_pwl: style.conv(mid, args.out_chans, 1, 1, 1, device),
            bn3: style.norm(args.out_chans, device),
            style: *style,
            has_skip: args.has_skip(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let act = self.style.act;
        // [B, M, H, W]
        let y = act.after_norm(&self.bn1, kernels::conv2d(&self.conv_pw, x.clone()));
        let y = act.after_norm(&self.bn2, kernels::conv2d(&self.conv_dw, y)); // [B, M, H/s, W/s]
        let y = match &self.se {
            Some(se) => se.forward(y),
            None => y,
        };
        // [B, C_out, H/s, W/s]
        let y = norm_act(&self.bn3, kernels::conv2d(&self.conv_pwl, y), Act::Identity);
        if self.has_skip { y + x } else { y }
    }
}
