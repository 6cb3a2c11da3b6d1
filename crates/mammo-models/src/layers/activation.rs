//! Pointwise activations, chosen per architecture as data (timm `act_layer`).

use burn::nn::BatchNorm;
use burn::tensor::Tensor;

use crate::kernels::{self, Act};

/// The activation a network applies after its convolutions and batch norms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`: timm `nn.ReLU`.
    Relu,
    /// `min(max(x, 0), 6)`: timm `nn.ReLU6`, the EfficientNet-Lite activation.
    Relu6,
    /// `x * sigmoid(x)`: timm `nn.SiLU` ("swish"), the EfficientNet activation.
    Silu,
}

impl Activation {
    /// Apply the activation elementwise.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        kernels::apply_act(x, self.kernel())
    }

    /// `self.apply(bn.forward(x))`, fused into one pass on flex ([`kernels::norm_act`]).
    pub fn after_norm<const D: usize>(self, bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
        kernels::norm_act(bn, x, self.kernel())
    }

    fn kernel(self) -> Act {
        match self {
            Activation::Relu => Act::Relu,
            Activation::Relu6 => Act::Relu6,
            Activation::Silu => Act::Silu,
        }
    }
}
