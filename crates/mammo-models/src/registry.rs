//! Every model this crate can build, by timm name, in one list.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use crate::classifier::Classifier;
use crate::config::{IMAGENET_MEAN, IMAGENET_STD, ModelConfig};
use crate::efficientnet::{self, EfficientNet, EfficientNetArch, EfficientNetOptions};
use crate::error::{ModelError, Result};
use crate::maxvit::{self, MaxVit, MaxVitArch, MaxVitOptions};
use crate::resnet::{self, ResNet, ResNetArch, ResNetOptions};

/// Which architecture family a registry entry builds, with its variant data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arch {
    /// [`ResNet`] with the given block type and depths.
    ResNet(ResNetArch),
    /// [`EfficientNet`] with the given stage table and conv style.
    EfficientNet(EfficientNetArch),
    /// [`MaxVit`] with the given widths and depths; its window size follows the config's
    /// `input_size`.
    MaxVit(MaxVitArch),
}

/// A registry entry: a timm model name and the facts timm keeps in its `PretrainedCfg`.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// RGB mean the reference weights expect on a [0, 1] image (timm `mean`).
    pub mean: [f32; 3],
    /// RGB standard deviation the reference weights expect (timm `std`).
    pub std: [f32; 3],
}

/// The registry. Tests iterate over it, so a model added here is tested everywhere.
pub const MODELS: &[ModelSpec] = &[
    resnet_spec("resnet18", resnet::RESNET18),
    resnet_spec("resnet34", resnet::RESNET34),
    resnet_spec("resnet50", resnet::RESNET50),
    resnet_spec("resnet152", resnet::RESNET152),
    efficientnet_spec(
        "efficientnet_b0",
        efficientnet::EFFICIENTNET_B0,
        IMAGENET_MEAN,
        IMAGENET_STD,
    ),
    // timm `tf_efficientnet_lite0.in1k`: the TensorFlow weights expect [-1, 1] input.
    efficientnet_spec(
        "tf_efficientnet_lite0",
        efficientnet::TF_EFFICIENTNET_LITE0,
        [0.5; 3],
        [0.5; 3],
    ),
    ModelSpec {
        name: "maxvit_nano_rw_256",
        arch: Arch::MaxVit(maxvit::MAXVIT_NANO_RW),
        default_input_size: [256, 256],
        first_conv: "stem.conv1",
        classifier: "head.fc",
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
    },
];

const fn resnet_spec(name: &'static str, arch: ResNetArch) -> ModelSpec {
    ModelSpec {
        name,
        arch: Arch::ResNet(arch),
        default_input_size: [224, 224],
        first_conv: "conv1",
        classifier: "fc",
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
    }
}

const fn efficientnet_spec(
    name: &'static str,
    arch: EfficientNetArch,
    mean: [f32; 3],
    std: [f32; 3],
) -> ModelSpec {
    ModelSpec {
        name,
        arch: Arch::EfficientNet(arch),
        default_input_size: [224, 224],
        first_conv: "conv_stem",
        classifier: "classifier",
        mean,
        std,
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
// A model is built once and held; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    ResNet(ResNet),
    EfficientNet(EfficientNet),
    MaxVit(MaxVit),
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
        Arch::EfficientNet(arch) => {
            let options = EfficientNetOptions {
                num_classes: cfg.num_classes,
                in_chans: cfg.in_chans,
                drop_rate: cfg.drop_rate,
            };
            Model::EfficientNet(EfficientNet::new(&arch, &options, device))
        }
        Arch::MaxVit(arch) => {
            let options = MaxVitOptions {
                num_classes: cfg.num_classes,
                in_chans: cfg.in_chans,
                drop_rate: cfg.drop_rate,
                img_size: cfg.input_size,
            };
            Model::MaxVit(MaxVit::new(&arch, &options, device))
        }
    })
}

impl Classifier for Model {
    fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Model::ResNet(m) => m.forward_features(x),
            Model::EfficientNet(m) => m.forward_features(x),
            Model::MaxVit(m) => m.forward_features(x),
        }
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        match self {
            Model::ResNet(m) => m.forward_head(features),
            Model::EfficientNet(m) => m.forward_head(features),
            Model::MaxVit(m) => m.forward_head(features),
        }
    }

    fn feature_layers(&self) -> Vec<String> {
        match self {
            Model::ResNet(m) => m.feature_layers(),
            Model::EfficientNet(m) => m.feature_layers(),
            Model::MaxVit(m) => m.feature_layers(),
        }
    }

    fn forward_until(&self, x: Tensor<4>, layer: usize) -> Tensor<4> {
        match self {
            Model::ResNet(m) => m.forward_until(x, layer),
            Model::EfficientNet(m) => m.forward_until(x, layer),
            Model::MaxVit(m) => m.forward_until(x, layer),
        }
    }

    fn forward_after(&self, activations: Tensor<4>, layer: usize) -> Tensor<2> {
        match self {
            Model::ResNet(m) => m.forward_after(activations, layer),
            Model::EfficientNet(m) => m.forward_after(activations, layer),
            Model::MaxVit(m) => m.forward_after(activations, layer),
        }
    }

    fn forward_pyramid(&self, x: Tensor<4>, layers: &[usize]) -> Vec<Tensor<4>> {
        match self {
            Model::ResNet(m) => m.forward_pyramid(x, layers),
            Model::EfficientNet(m) => m.forward_pyramid(x, layers),
            Model::MaxVit(m) => m.forward_pyramid(x, layers),
        }
    }

    fn first_conv(&self) -> &Conv2d {
        match self {
            Model::ResNet(m) => m.first_conv(),
            Model::EfficientNet(m) => m.first_conv(),
            Model::MaxVit(m) => m.first_conv(),
        }
    }

    fn num_features(&self) -> usize {
        match self {
            Model::ResNet(m) => m.num_features(),
            Model::EfficientNet(m) => m.num_features(),
            Model::MaxVit(m) => m.num_features(),
        }
    }
}
