//! Squeeze-and-excitation (Hu et al., 2018) in the EfficientNet form, timm `SqueezeExcite`
//! (`timm/models/_efficientnet_blocks.py`): global mean, 1x1 reduce with bias, the block's
//! activation, 1x1 expand with bias, sigmoid gate on the input.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::activation::Activation;
use super::conv::conv1x1_bias;
use crate::kernels::sigmoid;

/// timm `SqueezeExcite`; keys `conv_reduce.{weight,bias}`, `conv_expand.{weight,bias}`.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    pub conv_reduce: Conv2d,
    pub conv_expand: Conv2d,
    /// Activation between the two convolutions (the containing block's).
    #[module(skip)]
    pub act: Activation,
}

impl SqueezeExcite {
    /// Gate `channels` through a bottleneck of `reduced` channels.
    pub fn new(channels: usize, reduced: usize, act: Activation, device: &Device) -> Self {
        Self {
            conv_reduce: conv1x1_bias(channels, reduced, device),
            conv_expand: conv1x1_bias(reduced, channels, device),
            act,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = x.clone().mean_dim(3).mean_dim(2); // [B, C, 1, 1]
        let s = self.act.apply(self.conv_reduce.forward(s)); // [B, R, 1, 1]
        let gate = sigmoid(self.conv_expand.forward(s)); // [B, C, 1, 1]
        x * gate // [B, C, H, W]
    }
}
