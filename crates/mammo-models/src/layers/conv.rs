//! Convolution and batch-norm constructors with timm's defaults.

use burn::module::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::Device;

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
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
}

/// `nn.BatchNorm2d(channels)` with PyTorch's defaults: eps 1e-5, momentum 0.1, weight 1, bias 0.
///
/// `zero_gamma` starts the scale at 0, timm's `zero_init_last` for the last norm of a residual
/// branch, so every block begins as the identity.
pub fn batch_norm(channels: usize, zero_gamma: bool, device: &Device) -> BatchNorm {
    let bn = BatchNormConfig::new(channels)
        .with_epsilon(1e-5)
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
