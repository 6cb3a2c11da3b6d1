//! One MaxViT attention half-block, timm `PartitionAttentionCl` (`timm/models/maxxvit.py`):
//! pre-norm attention inside block windows or grid groups, then a pre-norm MLP, each with a
//! residual, on a channels-last map.

use burn::module::Module;
use burn::nn::LayerNorm;
use burn::tensor::{Device, Tensor};

use super::attention::Attention;
use super::layer_norm::layer_norm;
use super::mlp::Mlp;
use super::partition::Partition;

/// timm `PartitionAttentionCl` without layer scale or stochastic depth (the `_rw_` configs
/// have `init_values=None`; stochastic depth is the identity in eval mode); keys `norm1.*`,
/// `attn.*`, `norm2.*`, `mlp.*`.
#[derive(Module, Debug)]
pub struct PartitionAttention {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    #[module(skip)]
    pub partition: Partition,
    /// Window (block) or grid size, `[height, width]`.
    pub size: [usize; 2],
}

/// How a [`PartitionAttention`] is built (timm `MaxxVitTransformerCfg`, the parts used here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionAttentionArgs {
    /// Channels of the map.
    pub dim: usize,
    /// Channels per head.
    pub dim_head: usize,
    /// MLP hidden width over `dim`.
    pub mlp_ratio: f64,
    /// Layer-norm epsilon.
    pub norm_eps: f64,
    /// Window / grid size `[height, width]`.
    pub size: [usize; 2],
}

impl PartitionAttention {
    pub fn new(partition: Partition, args: &PartitionAttentionArgs, device: &Device) -> Self {
        let dim = args.dim;
        Self {
            norm1: layer_norm(dim, args.norm_eps, device),
            attn: Attention::new(dim, args.dim_head, args.size, device),
            norm2: layer_norm(dim, args.norm_eps, device),
            mlp: Mlp::new(dim, (dim as f64 * args.mlp_ratio) as usize, device),
            partition,
            size: args.size,
        }
    }

    /// `[B, H, W, C]` to `[B, H, W, C]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, h, w, _] = x.dims();
        let groups = self
            .partition
            .split(self.norm1.forward(x.clone()), self.size); // [G, N, C]
        let y = self
            .partition
            .merge(self.attn.forward(groups), self.size, [h, w]); // [B, H, W, C]
        let x = x + y;
        x.clone() + self.mlp.forward(self.norm2.forward(x)) // [B, H, W, C]
    }
}
