//! The depthwise-separable block (MobileNet-V1; EfficientNet's first stage), timm
//! `DepthwiseSeparableConv` (`timm/models/_efficientnet_blocks.py`): depthwise conv - BN - act,
//! optional squeeze-excite, pointwise conv - BN (no activation), residual when the shape is
//! kept.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::block_args::BlockArgs;
use super::conv::ConvStyle;
use super::squeeze_excite::SqueezeExcite;
use crate::kernels::{self, Act, norm_act};

/// timm `DepthwiseSeparableConv`; keys `conv_dw`, `bn1`, `se.*`, `conv_pw`, `bn2`.
///
/// Stochastic depth (timm `drop_path_rate`) is not implemented: the residual is always added
/// in full, which is what timm does in eval mode and with its default rate of 0.
#[derive(Module, Debug)]
pub struct DepthwiseSeparable {
    pub conv_dw: Conv2d,
    pub bn1: BatchNorm,
    pub se: Option<SqueezeExcite>,
    pub conv_pw: Conv2d,
    pub bn2: BatchNorm,
    #[module(skip)]
    pub style: ConvStyle,
    pub has_skip: bool,
}

impl DepthwiseSeparable {
    pub fn new(args: &BlockArgs, style: &ConvStyle, device: &Device) -> Self {
        let c = args.in_chans;
        Self {
            conv_dw: style.conv(c, c, args.kernel, args.stride, c, device),
            bn1: style.norm(c, device),
            se: args
                .se_chans()
                .map(|r| SqueezeExcite::new(c, r, style.act, device)),
            conv_pw: style.conv(c, args.out_chans, 1, 1, 1, device),
            bn2: style.norm(args.out_chans, device),
            style: *style,
            has_skip: args.has_skip(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let act = self.style.act;
        // [B, C, H/s, W/s]
        let y = act.after_norm(&self.bn1, kernels::conv2d(&self.conv_dw, x.clone()));
        let y = match &self.se {
            Some(se) => se.forward(y),
            None => y,
        };
        // [B, C_out, H/s, W/s]
        let y = norm_act(&self.bn2, kernels::conv2d(&self.conv_pw, y), Act::Identity);
        if self.has_skip { y + x } else { y }
    }
}
