//! Pointwise activations, chosen per architecture as data (timm `act_layer`).

use burn::tensor::Tensor;
use burn::tensor::activation::{relu, relu6, silu};

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
        match self {
            Activation::Relu => relu(x),
            Activation::Relu6 => relu6(x),
            Activation::Silu => silu(x),
        }
    }
}
