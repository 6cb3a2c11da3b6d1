//! Squeeze-and-excitation in timm's generic form, `SEModule` (`timm/layers/squeeze_excite.py`),
//! as MaxViT's MBConv uses it: global mean, 1x1 `fc1` with bias, SiLU, 1x1 `fc2` with bias,
//! sigmoid gate on the input. Same computation as [`super::SqueezeExcite`] (EfficientNet's),
//! under other key names.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::conv::conv1x1_bias;
use crate::kernels::{sigmoid, silu};

/// timm `SEModule` with `act_layer=silu`, no norm; keys `fc1.{weight,bias}`, `fc2.{weight,bias}`.
#[derive(Module, Debug)]
pub struct SeModule {
    pub fc1: Conv2d,
    pub fc2: Conv2d,
}

impl SeModule {
    /// Gate `channels` through a bottleneck of `reduced` channels.
    pub fn new(channels: usize, reduced: usize, device: &Device) -> Self {
        Self {
            fc1: conv1x1_bias(channels, reduced, device),
            fc2: conv1x1_bias(reduced, channels, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = x.clone().mean_dim(3).mean_dim(2); // [B, C, 1, 1]
        let s = silu(self.fc1.forward(s)); // [B, R, 1, 1]
        x * sigmoid(self.fc2.forward(s)) // [B, C, H, W]
    }
}
