//! FID and KID of generated images against real ones: the one recipe that training's
//! evaluations and `mammo gan fid` share. Both sets go through the same [`FeatureNet`] (in
//! batches of [`FEATURE_BATCH`]); FID is the Fréchet distance of their Gaussians, KID the
//! polynomial-kernel MMD over random subsets (`mammo_fid`, equal to pytorch-fid's and
//! torch-fidelity's arithmetic).

use burn::tensor::Device;
use mammo_fid::{Features, GaussianStats, Kid, frechet_distance, kernel_inception_distance};
use serde::Serialize;

use crate::error::Result;
use crate::features::FeatureNet;

/// Images per forward pass of the feature network.
pub const FEATURE_BATCH: usize = 32;

/// How KID is estimated: `subsets` random subsets of `subset_size` features of each set,
/// drawn from `seed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KidOptions {
    pub subsets: usize,
    pub subset_size: usize,
    pub seed: u64,
}

/// FID and KID of one set of images against a [`Reference`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distance {
    pub fid: f64,
    pub kid: Kid,
    /// Images on each side.
    pub real: usize,
    pub fake: usize,
}

/// Real images' features and their Gaussian, computed once and compared with any number of
/// generated sets.
#[derive(Debug, Clone)]
pub struct Reference {
    features: Vec<f32>,
    stats: GaussianStats,
    dim: usize,
}

/// `n` grey images `res` x `res` (values in `images`, one plane each) through `net`.
fn features_of(
    net: &FeatureNet,
    images: &[f32],
    n: usize,
    res: usize,
    device: &Device,
) -> Vec<f32> {
    net.features_of(images, [n, 1, res, res], FEATURE_BATCH, device)
}

impl Reference {
    /// The reference of `n` real images `res` x `res`.
    pub fn new(
        net: &FeatureNet,
        images: &[f32],
        n: usize,
        res: usize,
        device: &Device,
    ) -> Result<Self> {
        let dim = net.dim();
        let features = features_of(net, images, n, res, device);
        let stats = GaussianStats::from_features(&Features::new(&features, dim)?)?;
        Ok(Self {
            features,
            stats,
            dim,
        })
    }

    /// FID alone of `n` images against the reference; `None` when the distance cannot be
    /// computed (too few images for a covariance). What training reports as the floor: its
    /// own training images against the held-out ones.
    pub fn fid(
        &self,
        net: &FeatureNet,
        images: &[f32],
        n: usize,
        res: usize,
        device: &Device,
    ) -> Result<Option<f64>> {
        let f = features_of(net, images, n, res, device);
        let stats = GaussianStats::from_features(&Features::new(&f, self.dim)?)?;
        Ok(frechet_distance(&stats, &self.stats).ok())
    }

    /// FID and KID of `n` images against the reference.
    pub fn distance(
        &self,
        net: &FeatureNet,
        images: &[f32],
        n: usize,
        res: usize,
        kid: KidOptions,
        device: &Device,
    ) -> Result<Distance> {
        let f = features_of(net, images, n, res, device);
        let fake = Features::new(&f, self.dim)?;
        let fid = frechet_distance(&self.stats, &GaussianStats::from_features(&fake)?)?;
        let real = Features::new(&self.features, self.dim)?;
        let kid = kernel_inception_distance(&real, &fake, kid.subsets, kid.subset_size, kid.seed)?;
        Ok(Distance {
            fid,
            kid,
            real: real.n(),
            fake: fake.n(),
        })
    }
}
