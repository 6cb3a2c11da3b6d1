//! Layer norm over the channel axis, in both tensor layouts timm uses: `nn.LayerNorm` on
//! channels-last tokens and `LayerNorm2d` on an NCHW map (`timm/layers/norm.py`).

use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Tensor};

/// timm's transformer norm epsilon (`MaxxVitTransformerCfg.norm_eps`), not PyTorch's 1e-5.
pub const TRANSFORMER_LN_EPS: f64 = 1e-6;

/// `nn.LayerNorm(channels, eps)`: weight 1, bias 0. burn's `gamma`/`beta` are stored as
/// `weight`/`bias` by the PyTorch adapters.
pub fn layer_norm(channels: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(channels)
        .with_epsilon(eps)
        .init(device)
}

/// timm `LayerNorm2d`: normalise each pixel's channel vector of a `[B, C, H, W]` map.
pub fn layer_norm_2d(norm: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
    let y = norm.forward(x.permute([0, 2, 3, 1])); // [B, H, W, C]
    y.permute([0, 3, 1, 2]) // [B, C, H, W]
}
