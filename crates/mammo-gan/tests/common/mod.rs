//! Helpers shared by mammo-gan's integration tests.
#![allow(dead_code)]

use mammo_gan::GanConfig;

/// A generator and projected discriminator small enough to train in seconds on a CPU, with a
/// training schedule of 4 steps of 4 images.
pub fn tiny() -> GanConfig {
    let mut c = GanConfig::cpu();
    c.generator.z_dim = 16;
    c.generator.w_dim = 32;
    c.generator.cbase = 256;
    c.generator.cmax = 16;
    c.generator.syn_layers = 3;
    c.generator.head_layers = 1;
    c.discriminator.backbone = "resnet18".into();
    c.discriminator.feature_res = 32;
    c.discriminator.proj_channels = 8;
    c.discriminator.disc_channels = 16;
    c.discriminator.blur_fade_kimg = 0.05;
    c.training.batch_size = 4;
    c.training.kimg = 0.016; // 4 steps
    c.training.tick_kimg = 0.008;
    c.training.snap_kimg = 0.008;
    c.training.metric_kimg = 0.008;
    c.training.metric_samples = 8;
    c.training.kid_subsets = 3;
    c.training.kid_subset_size = 4;
    c.training.holdout_fraction = 0.25;
    c.training.grid = 2;
    c
}
