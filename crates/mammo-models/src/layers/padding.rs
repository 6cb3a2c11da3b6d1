//! Convolution padding as timm chooses it (`timm/layers/padding.py`).

use burn::nn::PaddingConfig2d;

/// How a convolution pads its input (timm's `pad_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// timm `pad_type=''`, PyTorch-native models: the same fixed amount on both sides,
    /// [`symmetric_padding`].
    Symmetric,
    /// timm `pad_type='same'`, the `tf_` ports of TensorFlow checkpoints: TensorFlow "SAME",
    /// computed from the input size at every call and asymmetric when the total is odd
    /// ([`tf_same_padding`]).
    TfSame,
}

impl Padding {
    /// The burn padding for a square `kernel` at `stride` (dilation 1).
    ///
    /// For [`Padding::TfSame`] this is burn's `PaddingConfig2d::Same`, which recomputes the
    /// padding from the input size on every forward pass and puts the odd pixel at the
    /// bottom/right, i.e. exactly [`tf_same_padding`] (pinned by `tests/parity.rs`).
    pub fn config(self, kernel: usize, stride: usize) -> PaddingConfig2d {
        match self {
            Padding::Symmetric => {
                let p = symmetric_padding(kernel, stride);
                PaddingConfig2d::Explicit(p, p, p, p)
            }
            Padding::TfSame => PaddingConfig2d::Same,
        }
    }
}

/// timm `get_padding` (dilation 1): `((stride - 1) + (kernel - 1)) / 2` on every side.
pub fn symmetric_padding(kernel: usize, stride: usize) -> usize {
    ((stride - 1) + (kernel - 1)) / 2
}

/// TensorFlow "SAME" padding of one spatial axis of length `size`, as `(before, after)`.
///
/// The output has `ceil(size / stride)` positions; the total padding is what the kernel needs
/// to reach them, `max((ceil(size / stride) - 1) * stride + kernel - size, 0)`, with the
/// smaller half before and the odd pixel after (timm `get_same_padding` and `pad_same`,
/// TensorFlow `tf.nn.convolution` padding="SAME").
pub fn tf_same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}
