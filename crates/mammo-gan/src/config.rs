//! Typed GAN settings, saved as `gan_config.json` beside every run.
//!
//! Capacity is named as in the paper's Table 1 (after StyleGAN-XL): `cbase`, `cmax`,
//! `syn_layers`, `head_layers`. Two presets: [`GanConfig::cpu`] (the default, small enough to
//! train at 16-32 px on two CPU cores) and [`GanConfig::paper`] (`configs/gan-paper.toml`: the
//! paper's 16384 / 256 / 7 / 4 with StyleGAN-XL's optimiser settings).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{GanError, Result};

/// Everything a GAN run depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GanConfig {
    pub generator: GeneratorConfig,
    pub discriminator: DiscriminatorConfig,
    pub training: GanTrainConfig,
}

/// Mapping network and synthesis capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Latent size (StyleGAN-XL: 64).
    pub z_dim: usize,
    /// Intermediate latent (style) size.
    pub w_dim: usize,
    /// Fully connected layers of the mapping network (StyleGAN-XL: 2).
    pub mapping_layers: usize,
    /// Channels at resolution `r` are `min(cbase / r, cmax)`.
    pub cbase: usize,
    pub cmax: usize,
    /// Synthesis layers of the stem (the network trained at `stem_res`).
    pub syn_layers: usize,
    /// Layers each super-resolution stage adds (the earlier layers frozen).
    pub head_layers: usize,
    /// Output resolution of the stem.
    pub stem_res: usize,
    /// Image channels (1: grey mammograms).
    pub img_channels: usize,
}

/// The projected discriminator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscriminatorConfig {
    /// Frozen feature network: any registered model (timm name).
    pub backbone: String,
    /// `.safetensors` weights for it: timm's (RGB, ImageNet), or a mammo classifier's (its own
    /// input channels and normalisation, e.g. one trained on mammograms); without them it stays
    /// randomly initialised (a projected GAN still trains, less well: the run's config
    /// records which it was).
    pub backbone_weights: Option<PathBuf>,
    /// Indices into the backbone's feature layers read by the discriminator, increasing.
    /// `None`: four layers at strides 4, 8, 16, 32.
    pub feature_layers: Option<Vec<usize>>,
    /// Images are resized to this square size before the feature network (StyleGAN-XL: 224).
    pub feature_res: usize,
    /// Channels of the first cross-channel mixing projection; doubled per deeper scale.
    pub proj_channels: usize,
    /// Widest mini-discriminator layer.
    pub disc_channels: usize,
    /// DiffAugment policy, comma separated: `color`, `translation`, `cutout`.
    pub diffaug: String,
    /// Gaussian blur of every discriminator input at the start, fading out linearly.
    pub blur_sigma: f64,
    pub blur_fade_kimg: f64,
}

/// Optimisation, schedule and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GanTrainConfig {
    pub batch_size: usize,
    pub g_lr: f64,
    pub d_lr: f64,
    /// Adam betas (StyleGAN-XL: 0, 0.99).
    pub betas: [f64; 2],
    /// Half-life of the generator EMA in thousands of images; `None`: `10 * batch / 32`.
    pub ema_kimg: Option<f64>,
    /// EMA half-life is at most this fraction of the images seen so far.
    pub ema_rampup: f64,
    /// Thousands of real images shown to the discriminator in this stage.
    pub kimg: f64,
    /// Log a line every `tick_kimg`.
    pub tick_kimg: f64,
    /// Checkpoint and sample grid every `snap_kimg`.
    pub snap_kimg: f64,
    /// FID/KID of the EMA generator against the held-out images every `metric_kimg` (0: only
    /// at the end).
    pub metric_kimg: f64,
    /// Generated images per FID/KID evaluation.
    pub metric_samples: usize,
    pub kid_subsets: usize,
    pub kid_subset_size: usize,
    /// Fraction of the real images (by patient) held out for FID/KID, never trained on.
    pub holdout_fraction: f64,
    /// Sample grid: `grid` x `grid` images from fixed latents.
    pub grid: usize,
    /// Random horizontal flips of the real images. Off by default: `mammo preprocess
    /// --flip-to left` puts every chest wall on the left, and flipping would undo that.
    pub xflip: bool,
    pub seed: u64,
}

impl GeneratorConfig {
    /// Channels of synthesis layers at resolution `res`: `min(cbase / res, cmax)`.
    pub fn channels(&self, res: usize) -> usize {
        (self.cbase / res).clamp(1, self.cmax)
    }
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            z_dim: 64,
            w_dim: 128,
            mapping_layers: 2,
            cbase: 1024,
            cmax: 64,
            syn_layers: 5,
            head_layers: 2,
            stem_res: 16,
            img_channels: 1,
        }
    }
}

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        Self {
            backbone: "tf_efficientnet_lite0".into(),
            backbone_weights: None,
            feature_layers: None,
            feature_res: 64,
            proj_channels: 32,
            disc_channels: 64,
            diffaug: "color,translation,cutout".into(),
            blur_sigma: 2.0,
            blur_fade_kimg: 5.0,
        }
    }
}

impl Default for GanTrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 16,
            g_lr: 0.0025,
            d_lr: 0.002,
            betas: [0.0, 0.99],
            ema_kimg: None,
            ema_rampup: 0.05,
            kimg: 20.0,
            tick_kimg: 1.0,
            snap_kimg: 2.0,
            metric_kimg: 2.0,
            metric_samples: 256,
            kid_subsets: 50,
            kid_subset_size: 64,
            holdout_fraction: 0.2,
            grid: 8,
            xflip: false,
            seed: 0,
        }
    }
}

impl Default for GanConfig {
    fn default() -> Self {
        Self::cpu()
    }
}

impl GanConfig {
    /// Small enough for 16-32 px on two CPU cores (a few kimg per minute).
    pub fn cpu() -> Self {
        Self {
            generator: GeneratorConfig::default(),
            discriminator: DiscriminatorConfig::default(),
            training: GanTrainConfig::default(),
        }
    }

    /// The paper's Table 1 capacity (cbase 16384, cmax 256, 7 synthesis layers, 4 head layers)
    /// with StyleGAN-XL's mapping (z 64, w 512, 2 layers), feature resolution 224 and
    /// optimiser; batch 64 as the paper's classifiers. Meant for a GPU.
    pub fn paper() -> Self {
        Self {
            generator: GeneratorConfig {
                z_dim: 64,
                w_dim: 512,
                mapping_layers: 2,
                cbase: 16384,
                cmax: 256,
                syn_layers: 7,
                head_layers: 4,
                stem_res: 16,
                img_channels: 1,
            },
            discriminator: DiscriminatorConfig {
                feature_res: 224,
                proj_channels: 64,
                disc_channels: 256,
                blur_fade_kimg: 200.0,
                ..DiscriminatorConfig::default()
            },
            training: GanTrainConfig {
                batch_size: 64,
                kimg: 10000.0,
                tick_kimg: 4.0,
                snap_kimg: 200.0,
                metric_kimg: 200.0,
                metric_samples: 10000,
                kid_subset_size: 1000,
                kid_subsets: 100,
                ..GanTrainConfig::default()
            },
        }
    }

    /// A named preset (`cpu`, `gan-paper`) or a TOML file.
    pub fn load(spec: &str) -> Result<Self> {
        match spec {
            "cpu" | "gan-cpu" => return Ok(Self::cpu()),
            "paper" | "gan-paper" => return Ok(Self::paper()),
            _ => {}
        }
        let path = Path::new(spec);
        let text = std::fs::read_to_string(path).map_err(|e| GanError::io("read", path, e))?;
        Self::from_toml_str(&text, path)
    }

    /// A TOML file's text (what [`GanConfig::load`] reads); `path` names it in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        let cfg: Self = toml::from_str(text)
            .map_err(|e| GanError::Config(format!("{}: {e}", path.display())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let g = &self.generator;
        let bad = |m: String| Err(GanError::Config(m));
        if !g.stem_res.is_power_of_two() || g.stem_res < 8 {
            return bad(format!(
                "generator.stem_res {} must be a power of two >= 8",
                g.stem_res
            ));
        }
        let ups = g.stem_res.trailing_zeros() as usize - 2;
        if g.syn_layers < ups + 1 {
            return bad(format!(
                "generator.syn_layers {} is too few to grow 4 px to {} px (needs {})",
                g.syn_layers,
                g.stem_res,
                ups + 1
            ));
        }
        if g.head_layers == 0
            || g.z_dim == 0
            || g.w_dim == 0
            || g.mapping_layers == 0
            || g.cmax == 0
            || g.cbase == 0
        {
            return bad("generator sizes must be positive".into());
        }
        if !matches!(g.img_channels, 1 | 3) {
            return bad(format!(
                "generator.img_channels {} must be 1 or 3",
                g.img_channels
            ));
        }
        let d = &self.discriminator;
        mammo_models::spec(&d.backbone)
            .map_err(|e| GanError::Config(format!("discriminator.backbone: {e}")))?;
        if d.feature_res < 32 {
            return bad(format!(
                "discriminator.feature_res {} is below 32",
                d.feature_res
            ));
        }
        for p in d
            .diffaug
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if !matches!(p, "color" | "translation" | "cutout") {
                return bad(format!(
                    "discriminator.diffaug: unknown policy {p:?} (color, translation, cutout)"
                ));
            }
        }
        let t = &self.training;
        if t.batch_size < 2 {
            return bad(
                "training.batch_size must be at least 2 (batch norm in the discriminator)".into(),
            );
        }
        if !(t.g_lr > 0.0 && t.d_lr > 0.0 && t.kimg > 0.0) {
            return bad("training.g_lr, d_lr and kimg must be positive".into());
        }
        if !(0.0..0.9).contains(&t.holdout_fraction) {
            return bad(format!(
                "training.holdout_fraction {} must be in [0, 0.9)",
                t.holdout_fraction
            ));
        }
        Ok(())
    }

    /// EMA half-life in images.
    pub fn ema_nimg(&self) -> f64 {
        self.training
            .ema_kimg
            .unwrap_or(10.0 * self.training.batch_size as f64 / 32.0)
            * 1000.0
    }

    /// Channels of synthesis layers at resolution `res`.
    pub fn channels(&self, res: usize) -> usize {
        self.generator.channels(res)
    }

    /// The DiffAugment policies switched on.
    pub fn policies(&self) -> Vec<String> {
        self.discriminator
            .diffaug
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_the_paper_preset_has_table_1() {
        GanConfig::cpu().validate().unwrap();
        let p = GanConfig::paper();
        p.validate().unwrap();
        assert_eq!(
            (
                p.generator.cbase,
                p.generator.cmax,
                p.generator.syn_layers,
                p.generator.head_layers
            ),
            (16384, 256, 7, 4)
        );
        assert_eq!(p.channels(16), 256);
        assert_eq!(p.channels(256), 64);
        assert_eq!(p.channels(512), 32);
        let text = toml::to_string(&p).unwrap();
        assert_eq!(toml::from_str::<GanConfig>(&text).unwrap(), p);
    }

    #[test]
    fn bad_settings_are_named() {
        let mut c = GanConfig::cpu();
        c.generator.syn_layers = 2;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("syn_layers 2")
        );
        let mut c = GanConfig::cpu();
        c.discriminator.diffaug = "color,zoom".into();
        assert!(c.validate().unwrap_err().to_string().contains("\"zoom\""));
        let mut c = GanConfig::cpu();
        c.discriminator.backbone = "vgg".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("unknown model")
        );
    }
}

#[cfg(test)]
mod preset_files {
    use super::*;

    #[test]
    fn the_config_files_are_the_presets() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
        assert_eq!(
            GanConfig::load(&format!("{dir}/gan-paper.toml")).unwrap(),
            GanConfig::paper()
        );
        assert_eq!(
            GanConfig::load(&format!("{dir}/gan-cpu.toml")).unwrap(),
            GanConfig::cpu()
        );
    }
}
