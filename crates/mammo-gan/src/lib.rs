//! Synthetic positives for the paper's augmented stage: a StyleGAN-XL-style generator
//! (mapping network, modulated-convolution synthesis, a stem at 16 px grown by
//! super-resolution stages with the earlier layers frozen) trained against a projected
//! discriminator (frozen feature network, random cross-channel and cross-scale mixing,
//! spectral-norm mini-discriminators) with DiffAugment, the hinge loss, blurred
//! discriminator inputs early on and a generator EMA; FID and KID over training.
//!
//! ```text
//! mammo gan train --manifest proc/32/manifest.csv --label 1 --res 16 --out gan16
//! mammo gan train --manifest proc/32/manifest.csv --label 1 --res 32 --stem gan16 --out gan32
//! mammo gan generate --run gan32 --n 1000 --out syn --with-manifest proc/32/manifest.csv
//! mammo train --manifest syn/manifest.csv ...
//! ```
//!
//! burn 0.22 has first-order autodiff only. StyleGAN-XL needs no R1 penalty (the projected
//! discriminator is regularised by its frozen features and spectral norm), and this crate
//! has no path-length regulariser either (StyleGAN-XL trains without one).

pub mod augment;
pub mod config;
pub mod data;
pub mod discriminator;
pub mod ema;
mod error;
pub mod features;
pub mod generate;
pub mod generator;
pub mod grid;
pub mod layers;
pub mod metrics;
mod nets;
pub mod train;

pub use config::{DiscriminatorConfig, GanConfig, GanTrainConfig, GeneratorConfig};
pub use data::ImageSource;
pub use error::{GanError, Result};
pub use features::FeatureNet;
pub use generate::{GenerateOptions, GenerateReport, generate};
pub use generator::{Generator, GeneratorArch};
pub use train::{GanState, GanSummary, GanTrainOptions, load_generator, train_gan};
