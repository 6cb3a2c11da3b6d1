//! timm-compatible image classifiers on burn 0.22: ResNet-18/34/50/152, EfficientNet-B0,
//! EfficientNet-Lite0 and MaxViT-nano.
//!
//! Every architecture exposes the same [`Classifier`] surface (`forward_features`,
//! `forward_head`, `forward`), is listed by its timm name in [`MODELS`], and keeps its
//! parameters under timm state-dict keys, so a timm `.safetensors` checkpoint loads by name
//! ([`load_timm_safetensors`]) and [`save_safetensors`] writes one timm can read.
//!
//! ```no_run
//! use burn::tensor::{Device, Tensor};
//! use mammo_models::{Classifier, ModelConfig, create_model};
//!
//! let device = Device::flex();
//! let cfg = ModelConfig::new("resnet18").unwrap(); // 1 logit, 1 input channel
//! let model = create_model(&cfg, &device).unwrap();
//! let logits = model.forward(Tensor::zeros([2, 1, 64, 64], &device)); // [2, 1]
//! ```

mod classifier;
mod config;
pub mod deterministic;
mod device;
pub mod efficientnet;
mod error;
pub mod kernels;
pub mod layers;
pub mod maxvit;
pub mod optim;
mod registry;
pub mod resnet;
mod seed;
mod weights;

pub use classifier::Classifier;
pub use config::{CONFIG_METADATA_KEY, IMAGENET_MEAN, IMAGENET_STD, ModelConfig};
pub use device::{
    DeviceError, DeviceSpec, OpenDevice, TEST_VULKAN_ENV, TEST_VULKAN_MODELS_ENV, VulkanTier,
    available as available_devices, compiled_in as compiled_in_devices, parse_device,
    vulkan_for_tests, vulkan_for_tests_at, vulkan_test_models,
};
pub use error::{ModelError, Result};
pub use registry::{Arch, MODELS, Model, ModelSpec, create_model, model_names, spec};
pub use seed::{materialise, seeded};
pub use weights::{
    LoadReport, load_timm_safetensors, load_timm_safetensors_bytes, read_model_config,
    read_model_config_from, save_safetensors, timm_keys,
};
