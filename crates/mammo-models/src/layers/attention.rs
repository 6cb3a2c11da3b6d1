//! Multi-head self-attention over token groups with a relative position bias, timm
//! `AttentionCl` (`timm/models/maxxvit.py`, channels-last, `head_first=True`,
//! `expand_first=False`): `softmax(q k^T / sqrt(d) + bias) v`, then an output projection.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::rel_pos_bias::RelPosBias;

/// timm `AttentionCl`; keys `qkv.{weight,bias}`, `rel_pos.relative_position_bias_table`,
/// `proj.{weight,bias}`.
#[derive(Module, Debug)]
pub struct Attention {
    pub qkv: Linear,
    pub rel_pos: RelPosBias,
    pub proj: Linear,
    pub num_heads: usize,
    pub dim_head: usize,
}

impl Attention {
    /// `dim` channels in and out, `dim / dim_head` heads, a bias table for `window`.
    ///
    /// Panics if `dim` is not a multiple of `dim_head` (timm asserts the same).
    pub fn new(dim: usize, dim_head: usize, window: [usize; 2], device: &Device) -> Self {
        assert!(
            dim.is_multiple_of(dim_head),
            "attention width {dim} is not a multiple of the head width {dim_head}"
        );
        let num_heads = dim / dim_head;
        Self {
            qkv: LinearConfig::new(dim, 3 * dim).init(device),
            rel_pos: RelPosBias::new(window, num_heads, device),
            proj: LinearConfig::new(dim, dim).init(device),
            num_heads,
            dim_head,
        }
    }

    /// `[G, N, C]` token groups (`N` = window area) to `[G, N, C]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [g, n, c] = x.dims();
        let (heads, d) = (self.num_heads, self.dim_head);
        // head_first: the 3C qkv channels are laid out per head as [q_h | k_h | v_h].
        let qkv = self
            .qkv
            .forward(x) // [G, N, 3C]
            .reshape([g, n, heads, 3 * d]) // [G, N, heads, 3d]
            .swap_dims(1, 2); // [G, heads, N, 3d]
        let mut parts = qkv.chunk(3, 3).into_iter(); // 3 x [G, heads, N, d]
        let (q, k, v) = (
            parts.next().expect("q"),
            parts.next().expect("k"),
            parts.next().expect("v"),
        );
        let scale = (d as f64).powf(-0.5);
        let attn = (q * scale).matmul(k.swap_dims(2, 3)); // [G, heads, N, N]
        let attn = softmax(attn + self.rel_pos.bias(), 3); // [G, heads, N, N]
        let y = attn
            .matmul(v) // [G, heads, N, d]
            .swap_dims(1, 2) // [G, N, heads, d]
            .reshape([g, n, c]); // [G, N, C]
        self.proj.forward(y) // [G, N, C]
    }
}
