//! pytorch-fid's FID Inception-v3 on burn 0.22: the network behind the FID numbers papers
//! report, from images to the 2048-d pool3 features that `mammo-fid` compares.
//!
//! It reproduces `pytorch_fid.inception.InceptionV3()` of pytorch-fid 0.3.0 with its defaults
//! (`output_blocks=[3]`, `resize_input=True`, `normalize_input=True`,
//! `use_fid_inception=True`): torchvision's Inception-v3 layout, batch norm with eps 0.001,
//! pytorch-fid's patched blocks (average pools that exclude the padding in Mixed_5b..5d,
//! 6b..6e and 7b; a max pool in the pool branch of Mixed_7c), bilinear resizing to 299 x 299
//! without corner alignment and inputs scaled from [0, 1] to [-1, 1]. Parity with pytorch-fid
//! on deterministic weights is tested (`tests/parity.rs`).
//!
//! ## Weights
//!
//! The weights are pytorch-fid's port of TensorFlow's 2015-12-05 Inception graph,
//! `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid downloads it from its GitHub release on
//! first use and caches it under `~/.cache/torch/hub/checkpoints/`). Nothing here downloads
//! it. Convert a copy you already have to safetensors once, with torch and safetensors
//! installed:
//!
//! ```text
//! python tools/convert_pt_inception.py \
//!     ~/.cache/torch/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth \
//!     pt_inception-2015-12-05.safetensors
//! ```
//!
//! The script keeps the file's keys (`Conv2d_1a_3x3.conv.weight`, ..., `fc.weight`) and
//! checks them against pytorch-fid's network when pytorch-fid is installed. A saved
//! `InceptionV3().state_dict()` (keys `blocks.0.0.conv.weight`, ...) loads as well.
//!
//! ```no_run
//! use burn::tensor::{Device, Tensor};
//! use mammo_inception::{FEATURE_DIM, load_safetensors};
//!
//! let device = Device::flex();
//! let inception = load_safetensors("pt_inception-2015-12-05.safetensors", &device).unwrap();
//! let images: Tensor<4> = Tensor::zeros([2, 3, 256, 256], &device); // RGB in [0, 1]
//! let features = inception.pool3(images); // [2, 2048]
//! assert_eq!(features.dims(), [2, FEATURE_DIM]);
//! ```

pub mod blocks;
mod error;
mod model;
mod weights;

pub use error::InceptionError;
pub use model::{Block, FEATURE_DIM, FidInception, INPUT_SIZE, preprocess};
pub use weights::{load_safetensors, state_dict_keys};
