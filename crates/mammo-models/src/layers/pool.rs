//! Pooling without parameters.

use burn::nn::PaddingConfig2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::Tensor;

/// Mean over the spatial axes: timm `SelectAdaptivePool2d(pool_type="avg", flatten=True)`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [b, c, _, _] = x.dims();
    x.mean_dim(3) // [B, C, H, 1]
        .mean_dim(2) // [B, C, 1, 1]
        .reshape([b, c]) // [B, C]
}

/// `nn.MaxPool2d(kernel_size=3, stride=2, padding=1)`, the ResNet stem pool.
pub fn max_pool_3x3_s2() -> MaxPool2d {
    MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init()
}
