//! Small blocks shared by the architectures, one concern per file.
//!
//! Parameter-free operations are plain functions; blocks with weights are burn modules whose
//! field names are the timm/PyTorch attribute names, so state-dict keys line up.

mod activation;
mod attention;
mod block_args;
mod conv;
mod depthwise_separable;
mod inverted_residual;
mod layer_norm;
mod mbconv;
mod mlp;
mod padding;
mod partition;
mod partition_attention;
mod pool;
mod rel_pos_bias;
mod se_module;
mod squeeze_excite;

pub use activation::Activation;
pub use attention::Attention;
pub use block_args::{BlockArgs, make_divisible};
pub use conv::{ConvStyle, PYTORCH_BN_EPS, TF_BN_EPS, batch_norm, conv1x1_bias, conv2d};
pub use depthwise_separable::DepthwiseSeparable;
pub use inverted_residual::InvertedResidual;
pub use layer_norm::{TRANSFORMER_LN_EPS, layer_norm, layer_norm_2d};
pub use mbconv::{Downsample2d, MbConv, MbConvArgs};
pub use mlp::Mlp;
pub use padding::{Padding, symmetric_padding, tf_same_padding};
pub use partition::Partition;
pub use partition_attention::{PartitionAttention, PartitionAttentionArgs};
pub use pool::{global_avg_pool, max_pool_3x3_s2};
pub use rel_pos_bias::{RelPosBias, relative_position_index};
pub use se_module::SeModule;
pub use squeeze_excite::SqueezeExcite;
