//! Small blocks shared by the architectures, one concern per file.
//!
//! Parameter-free operations are plain functions; blocks with weights are burn modules whose
//! field names are the timm/PyTorch attribute names, so state-dict keys line up.

mod conv;
mod pool;

pub use conv::{batch_norm, conv2d};
pub use pool::{global_avg_pool, max_pool_3x3_s2};
