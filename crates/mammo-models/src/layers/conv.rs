//! Convolution and batch-norm constructors with timm's defaults.

use burn::module::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::Device;

use super::activation::Activation;
use super::padding::Padding;

/// timm's weight init for every conv: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`,
/// N(0, 2 / fan_out) with `fan_out = c_out / groups * k * k` (burn counts groups the same way).
const FAN_OUT_NORMAL: Initializer = Initializer::KaimingNormal {
    gain: std::f64::consts::SQRT_2,
    fan_out_only: true,
};

/// A square `k x k` convolution with symmetric zero padding `pad`, no bias unless asked.
///
/// Weights start as timm's `ResNet.init_weights` does for every conv:
/// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, i.e. N(0, 2 / (c_out * k * k)).
pub fn conv2d(
    in_chans: usize,
    out_chans: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    bias: bool,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([in_chans, out_chans], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(bias)
        .with_initializer(FAN_OUT_NORMAL)
        .init(device)
}

/// `nn.BatchNorm2d(channels)` with PyTorch's defaults: eps 1e-5, momentum 0.1, weight 1, bias 0.
///
/// `zero_gamma` starts the scale at 0, timm's `zero_init_last` for the last norm of a residual
/// branch, so every block begins as the identity.
pub fn batch_norm(channels: usize, zero_gamma: bool, device: &Device) -> BatchNorm {
    let bn = BatchNormConfig::new(channels)
        .with_epsilon(PYTORCH_BN_EPS)
        .with_momentum(0.1)
        .init(device);
    if zero_gamma {
        BatchNorm {
            gamma: Initializer::Zeros.init([channels], device),
            ..bn
        }
    } else {
        bn
    }
}

/// `nn.BatchNorm2d`'s default epsilon.
pub const PYTORCH_BN_EPS: f64 = 1e-5;
/// TensorFlow's batch-norm epsilon, used by timm's `tf_` ports (`BN_EPS_TF_DEFAULT`).
pub const TF_BN_EPS: f64 = 1e-3;

/// How a network builds its conv - batch norm - activation units: timm's `pad_type`,
/// `bn_eps` and `act_layer`, shared by every block of an EfficientNet-family model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvStyle {
    /// Padding of every convolution.
    pub padding: Padding,
    /// Batch-norm epsilon.
    pub bn_eps: f64,
    /// Activation after the normalisations that have one.
    pub act: Activation,
}

impl ConvStyle {
    /// A bias-free square convolution; `groups == in_chans == out_chans` makes it depthwise.
    pub fn conv(
        &self,
        in_chans: usize,
        out_chans: usize,
        kernel: usize,
        stride: usize,
        groups: usize,
        device: &Device,
    ) -> Conv2d {
        Conv2dConfig::new([in_chans, out_chans], [kernel, kernel])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(self.padding.config(kernel, stride))
            .with_bias(false)
            .with_initializer(FAN_OUT_NORMAL)
            .init(device)
    }

    /// `nn.BatchNorm2d(channels, eps=bn_eps)`: weight 1, bias 0, momentum 0.1.
    pub fn norm(&self, channels: usize, device: &Device) -> BatchNorm {
        BatchNormConfig::new(channels)
            .with_epsilon(self.bn_eps)
            .with_momentum(0.1)
            .init(device)
    }
}

/// A 1x1 convolution with bias (zero at start, as timm's `efficientnet_init_weights` leaves
/// it), for squeeze-excite gates.
pub fn conv1x1_bias(in_chans: usize, out_chans: usize, device: &Device) -> Conv2d {
    let conv = Conv2dConfig::new([in_chans, out_chans], [1, 1])
        .with_initializer(FAN_OUT_NORMAL)
        .init(device);
    Conv2d {
        bias: Some(Initializer::Zeros.init([out_chans], device)),
        ..conv
    }
}
