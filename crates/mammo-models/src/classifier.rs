//! The surface every architecture exposes.

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// An image classifier split the way timm splits one.
///
/// `forward_features` stops at the last spatial feature map (what class-activation maps are
/// computed from); `forward_head` pools it, applies dropout while training and projects it to
/// logits. `forward` is the two in sequence.
pub trait Classifier {
    /// `[B, in_chans, H, W]` image batch to the last feature map `[B, C, h, w]`.
    fn forward_features(&self, x: Tensor<4>) -> Tensor<4>;

    /// `[B, C, h, w]` feature map to `[B, num_classes]` logits.
    fn forward_head(&self, features: Tensor<4>) -> Tensor<2>;

    /// `[B, in_chans, H, W]` image batch to `[B, num_classes]` logits.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_head(self.forward_features(x))
    }

    /// The convolution that sees the input image (timm `pretrained_cfg["first_conv"]`).
    fn first_conv(&self) -> &Conv2d;

    /// Channels of the map `forward_features` returns (timm `num_features`).
    fn num_features(&self) -> usize;
}
