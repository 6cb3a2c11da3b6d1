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

    /// Names (timm module paths) of the feature layers an explanation can target, from the
    /// first to the last; the last one's output is what `forward_features` returns.
    fn feature_layers(&self) -> Vec<String>;

    /// The input through feature layer `layer` (an index into [`Self::feature_layers`]).
    fn forward_until(&self, x: Tensor<4>, layer: usize) -> Tensor<4>;

    /// The output of feature layer `layer` on to the logits: `forward_after(forward_until(x,
    /// l), l) == forward(x)` for every `l`.
    fn forward_after(&self, activations: Tensor<4>, layer: usize) -> Tensor<2>;

    /// The outputs of several feature layers (indices into [`Self::feature_layers`], in
    /// increasing order) from one pass over the input: what a projected-GAN discriminator
    /// reads. The default runs [`Self::forward_until`] once per layer.
    fn forward_pyramid(&self, x: Tensor<4>, layers: &[usize]) -> Vec<Tensor<4>> {
        layers
            .iter()
            .map(|&l| self.forward_until(x.clone(), l))
            .collect()
    }

    /// The convolution that sees the input image (timm `pretrained_cfg["first_conv"]`).
    fn first_conv(&self) -> &Conv2d;

    /// Channels of the map `forward_features` returns (timm `num_features`).
    fn num_features(&self) -> usize;
}
