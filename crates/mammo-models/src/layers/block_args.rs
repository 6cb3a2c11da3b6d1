//! What one mobile block is built from: timm's decoded block arguments
//! (`timm/models/_efficientnet_builder.py`, `_decode_block_str` and `EfficientNetBuilder`)
//! and the channel rounding they go through.

/// One block of an EfficientNet-family network, after the stage definition has been expanded
/// into blocks (only the first block of a stage strides or changes channels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockArgs {
    /// Channels into the block.
    pub in_chans: usize,
    /// Channels out of the block.
    pub out_chans: usize,
    /// Depthwise kernel size (square).
    pub kernel: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Expansion of the inverted residual's hidden width over `in_chans` (1 for a
    /// depthwise-separable block).
    pub exp_ratio: f64,
    /// Squeeze-excite reduction relative to the block *input* channels (0.25 in EfficientNet,
    /// 0 for none).
    pub se_ratio: f64,
}

impl BlockArgs {
    /// Hidden width of an inverted residual: timm `make_divisible(in_chs * exp_ratio)`.
    pub fn mid_chans(&self) -> usize {
        make_divisible(self.in_chans as f64 * self.exp_ratio, 8)
    }

    /// Squeeze-excite bottleneck width, or `None` without squeeze-excite.
    ///
    /// timm divides `se_ratio` by `exp_ratio` and applies it to the hidden width
    /// (`EfficientNetBuilder` with `se_from_exp=False`), then rounds half to even (Python
    /// `round`); the result is `in_chans * se_ratio` up to the rounding of `mid_chans`.
    pub fn se_chans(&self) -> Option<usize> {
        (self.se_ratio > 0.0).then(|| {
            let ratio = self.se_ratio / self.exp_ratio;
            (self.mid_chans() as f64 * ratio).round_ties_even() as usize
        })
    }

    /// A residual connection exists when the block keeps the shape (timm `has_skip`).
    pub fn has_skip(&self) -> bool {
        self.stride == 1 && self.in_chans == self.out_chans
    }
}

/// timm `make_divisible(v, divisor)`: the nearest multiple of `divisor` (at least `divisor`),
/// bumped up one step if rounding lost more than 10 %.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = (((v + d / 2.0) / d).floor() * d).max(d);
    let rounded = if rounded < 0.9 * v {
        rounded + d
    } else {
        rounded
    };
    rounded as usize
}
