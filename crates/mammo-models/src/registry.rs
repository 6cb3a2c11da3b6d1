//! Every model this crate can build, by timm name, in one list.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use crate::classifier::Classifier;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::resnet::{self, ResNet, ResNetArch, ResNetOptions};

/// Which architecture family a registry entry builds, with its variant data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// [`ResNet`] with the given block type and depths.
    ResNet(ResNetArch),
}

/// A registry entry: a timm model name and the facts timm keeps in its `PretrainedCfg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// timm model name.
    pub name: &'static str,
    /// Architecture and variant.
    pub arch: Arch,
    /// `[height, width]` the reference weights were trained at (timm `input_size[1:]`).
    pub default_input_size: [usize; 2],
    /// State-dict prefix of the convolution that sees the image (timm `first_conv`).
    pub first_conv: &'static str,
    /// State-dict prefix of the classifier layer (timm `classifier`).
    pub classifier: &'static str,
}

/// The registry. Tests iterate over it, so a model added here is tested everywhere.
pub const MODELS: &[ModelSpec] = &[
    resnet_spec("resnet18", resnet::RESNET18),
    resnet_spec("resnet34", resnet::RESNET34),
    resnet_spec("resnet50", resnet::RESNET50),
    resnet_spec("resnet152", resnet::RESNET152),
];

const fn resnet_spec(name: &'static str, arch: ResNetArch) -> ModelSpec {
    ModelSpec {
        name,
        arch: Arch::ResNet(arch),
        default_input_size: [224, 224],
        first_conv: "conv1",
        classifier: "fc",
    }
}

/// Names of all registered models, in registry order.
pub fn model_names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

/// The registry entry for a timm model name.
pub fn spec(name: &str) -> Result<&'static ModelSpec> {
    MODELS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ModelError::UnknownModel {
            name: name.to_string(),
            known: model_names(),
        })
}

/// Any registered model. A burn module (trainable, storable) that dispatches the
/// [`Classifier`] surface to the architecture inside; the variant name is not part of any
/// stored key.
#[derive(Module, Debug)]
pub enum Model {
    ResNet(ResNet),
}

/// Build the model `cfg` describes, freshly initialised, on `device`.
///
/// Put the device in autodiff mode (`device.autodiff()`) to train; call [`Module::valid`] on
/// the model for inference (batch norm then uses its running statistics, dropout is off).
pub fn create_model(cfg: &ModelConfig, device: &Device) -> Result<Model> {
    cfg.validate()?;
    let spec = spec(&cfg.architecture)?;
    Ok(match spec.arch {
        Arch::ResNet(arch) => {
            let options = ResNetOptions {
                num_classes: cfg.num_classes,
                in_chans: cfg.in_chans,
                drop_rate: cfg.drop_rate,
                zero_init_last: true,
            };
            Model::ResNet(ResNet::new(&arch, &options, device))
        }
    })
}

impl Classifier for Model {
    fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Model::ResNet(m) => m.forward_features(x),
        }
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        match self {
            Model::ResNet(m) => m.forward_head(features),
        }
    }

    fn first_conv(&self) -> &Conv2d {
        match self {
            Model::ResNet(m) => m.first_conv(),
        }
    }

    fn num_features(&self) -> usize {
        match self {
            Model::ResNet(m) => m.num_features(),
        }
    }
}
