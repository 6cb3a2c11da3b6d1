//! Small blocks shared by the architectures, one concern per file.
//!
//! Parameter-free operations are plain functions; blocks with weights are burn modules whose
//! field names are the timm/PyTorch attribute names, so state-dict keys line up.

mod activation;
mod block_args;
mod conv;
mod depthwise_separable;
mod inverted_residual;
mod padding;
mod pool;
mod squeeze_excite;

pub use activation::Activation;
pub use block_args::{BlockArgs, make_divisible};
pub use conv::{ConvStyle, PYTORCH_BN_EPS, TF_BN_EPS, batch_norm, conv1x1_bias, conv2d};
pub use depthwise_separable::DepthwiseSeparable;
pub use inverted_residual::InvertedResidual;
pub use padding::{Padding, symmetric_padding, tf_same_padding};
pub use pool::{global_avg_pool, max_pool_3x3_s2};
pub use squeeze_excite::SqueezeExcite;
