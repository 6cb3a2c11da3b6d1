//! The transformer feed-forward block, timm `Mlp` (`timm/layers/mlp.py`): linear - GELU -
//! linear.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

/// timm `Mlp` without dropout or norm; keys `fc1.{weight,bias}`, `fc2.{weight,bias}`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    /// `dim` -> `hidden` -> `dim`.
    pub fn new(dim: usize, hidden: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(dim, hidden).init(device),
            fc2: LinearConfig::new(hidden, dim).init(device),
        }
    }

    /// `[..., dim]` to `[..., dim]`. The GELU is the exact (erf) form, timm's `'gelu'`
    /// (`nn.GELU()` with `approximate='none'`), not the tanh approximation.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}
