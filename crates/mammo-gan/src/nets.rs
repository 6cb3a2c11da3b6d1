//! The networks of one GAN stage and what they learn by: the generator, its moving
//! average and the projected discriminator with their optimisers ([`Nets`]), built fresh, from
//! a stem run or from a checkpoint ([`build`]) under the seeding lock; one discriminator step,
//! one generator step and the EMA update; the checkpoint they are saved to.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use mammo_models::optim::{AdamConfig, WeightDecay};
use mammo_rand::{Rng, derive};

use crate::augment::DiffAugment;
use crate::config::GanConfig;
use crate::data::ImageSet;
use crate::discriminator::ProjectedDiscriminator;
use crate::ema;
use crate::error::{GanError, Result};
use crate::generator::{Generator, GeneratorArch};
use crate::layers::{Noise, blur};
use crate::train::{GanState, GanTrainOptions, write_json};

fn optimizer(cfg: &GanConfig) -> ModuleOptimizer {
    let [b1, b2] = cfg.training.betas;
    AdamConfig {
        beta_1: b1 as f32,
        beta_2: b2 as f32,
        epsilon: 1e-8,
        weight_decay: WeightDecay::None,
    }
    .init()
}

/// Latents `[n, z_dim]` from `rng`.
pub(crate) fn latents(rng: &mut Rng, n: usize, z_dim: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..n * z_dim).map(|_| rng.normal() as f32).collect();
    Tensor::from_data(TensorData::new(v, [n, z_dim]), device)
}

/// A batch of real images, each flipped with probability 1/2 if `xflip`.
fn real_batch(set: &ImageSet, rng: &mut Rng, n: usize, xflip: bool, device: &Device) -> Tensor<4> {
    let r = set.res;
    let mut v = Vec::with_capacity(n * r * r);
    for _ in 0..n {
        let img = set.image(rng.int_in(0, set.len() as u64 - 1) as usize);
        if xflip && rng.chance(0.5) {
            for row in img.chunks(r) {
                v.extend(row.iter().rev());
            }
        } else {
            v.extend_from_slice(img);
        }
    }
    Tensor::from_data(TensorData::new(v, [n, 1, r, r]), device)
}

pub(crate) fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

pub(crate) fn save_module<M: Module>(m: &M, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_file(path).overwrite(true);
    m.save_into(&mut store)
        .map_err(|e| GanError::io("write", path, e))
}

fn load_module<M: Module>(m: &mut M, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_file(path);
    m.load_from(&mut store)
        .map_err(|e| GanError::io("load", path, e))?;
    Ok(())
}

pub(crate) struct Nets {
    pub(crate) g: Generator,
    pub(crate) g_ema: Generator,
    pub(crate) d: ProjectedDiscriminator,
    pub(crate) g_opt: ModuleOptimizer,
    pub(crate) d_opt: ModuleOptimizer,
}

/// What every step of one run shares.
pub(crate) struct StepContext<'a> {
    pub(crate) cfg: &'a GanConfig,
    pub(crate) augment: DiffAugment,
    /// The autodiff device the nets train on, and its plain inner device.
    pub(crate) device: Device,
    pub(crate) plain: Device,
    /// Blur of the discriminator's inputs at this step (faded out over training).
    pub(crate) sigma: f64,
    /// The stem trains the mapping's running mean of `w` (for truncation).
    pub(crate) stem_training: bool,
}

/// One discriminator step's loss and mean outputs on real and generated images.
pub(crate) struct DiscriminatorStep {
    pub(crate) loss: f32,
    pub(crate) d_real: f32,
    pub(crate) d_fake: f32,
}

impl Nets {
    /// The discriminator learns: real images up, generated ones down (hinge loss), both
    /// blurred and augmented alike. Draws the real batch, the latents and the augmentations
    /// from `rng`, in that order.
    pub(crate) fn discriminator_step(
        mut self,
        c: &StepContext,
        data: &ImageSet,
        rng: &mut Rng,
    ) -> (Self, DiscriminatorStep) {
        let t = &c.cfg.training;
        let (b, z_dim) = (t.batch_size, c.cfg.generator.z_dim);
        let real = real_batch(data, rng, b, t.xflip, &c.device);
        let fake = self
            .g
            .valid()
            .forward(latents(rng, b, z_dim, &c.plain), 1.0, Noise::Random);
        let d_real = self.d.forward(c.augment.apply(blur(real, c.sigma), rng));
        let d_fake = self
            .d
            .forward(c.augment.apply(blur(fake.autodiff(), c.sigma), rng));
        let (mr, mf): (f32, f32) = (
            d_real.clone().mean().into_scalar(),
            d_fake.clone().mean().into_scalar(),
        );
        let loss_d = relu(-d_real + 1.0).mean() + relu(d_fake + 1.0).mean();
        let loss: f32 = loss_d.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss_d.backward(), &self.d);
        self.d = self.d_opt.step(t.d_lr, self.d, grads);
        let step = DiscriminatorStep {
            loss,
            d_real: mr,
            d_fake: mf,
        };
        (self, step)
    }

    /// The generator learns to fool the discriminator; returns its loss. Not applied when the
    /// loss is not finite (the caller stops: the run diverged).
    pub(crate) fn generator_step(mut self, c: &StepContext, rng: &mut Rng) -> (Self, f32) {
        let t = &c.cfg.training;
        let (b, z_dim) = (t.batch_size, c.cfg.generator.z_dim);
        let w = self
            .g
            .mapping
            .forward(latents(rng, b, z_dim, &c.device), 1.0);
        if c.stem_training {
            self.g.mapping.track(w.clone());
        }
        let fake = self.g.synthesis(w, Noise::Random);
        let loss_g = -self
            .d
            .forward(c.augment.apply(blur(fake, c.sigma), rng))
            .mean();
        let loss: f32 = loss_g.clone().into_scalar();
        if loss.is_finite() {
            let grads = GradientsParams::from_grads(loss_g.backward(), &self.g);
            self.g = self.g_opt.step(t.g_lr, self.g, grads);
        }
        (self, loss)
    }

    /// The moving average of the generator's weights after `nimg` images (half-life
    /// `ema_nimg`, ramped up over the first images).
    pub(crate) fn ema_step(mut self, cfg: &GanConfig, nimg: u64) -> Self {
        let t = &cfg.training;
        let ema_nimg = cfg.ema_nimg().min(nimg as f64 * t.ema_rampup).max(1e-8);
        let beta = 0.5f64.powf(t.batch_size as f64 / ema_nimg);
        self.g_ema = ema::update(self.g_ema, &self.g, beta);
        self
    }
}

pub(crate) fn save_checkpoint(out: &Path, nets: &Nets, state: &GanState) -> Result<()> {
    let tmp = out.join("checkpoint.tmp");
    let ckpt = checkpoint_dir(out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| GanError::io("remove", &tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| GanError::io("create", &tmp, e))?;
    save_module(&nets.g, &tmp.join("g.bpk"))?;
    save_module(&nets.g_ema, &tmp.join("g_ema.bpk"))?;
    save_module(&nets.d, &tmp.join("d.bpk"))?;
    nets.g_opt
        .save(tmp.join("g_optim.bpk"))
        .map_err(|e| GanError::io("write", &tmp.join("g_optim.bpk"), e))?;
    nets.d_opt
        .save(tmp.join("d_optim.bpk"))
        .map_err(|e| GanError::io("write", &tmp.join("d_optim.bpk"), e))?;
    write_json(&tmp.join("state.json"), state)?;
    mammo_image::swap_dir(&tmp, &ckpt).map_err(|e| GanError::io("swap in", &ckpt, e))
}

/// Builds (fresh, from a stem, or from the checkpoint) the networks of a stage.
pub(crate) fn build(
    cfg: &GanConfig,
    arch: &GeneratorArch,
    opts: &GanTrainOptions,
    resume: bool,
    device: &Device,
) -> Result<Nets> {
    // Both networks drawn under the seeding lock, every parameter materialised (the
    // discriminator's projections are lazily initialised): a function of the seed alone.
    let init_seed = derive(cfg.training.seed, &[0x696e_6974, arch.stages() as u64]);
    let (mut g, mut d) = mammo_models::seeded(device, init_seed, || -> Result<_> {
        let g = Generator::new(arch, device);
        let d = ProjectedDiscriminator::new(cfg, device)?;
        mammo_models::materialise(&g);
        mammo_models::materialise(&d);
        Ok((g, d))
    })?;
    if !resume && let Some(stem) = &opts.stem {
        let path = stem.join("generator.bpk");
        let mut store = BurnpackStore::from_file(&path).allow_partial(true);
        let r = g
            .load_from(&mut store)
            .map_err(|e| GanError::io("load", &path, e))?;
        if !r.errors.is_empty() || !r.unused.is_empty() {
            return Err(GanError::Run {
                run: stem.clone(),
                reason: format!(
                    "its generator does not fit as the stem: {:?} {:?}",
                    r.errors, r.unused
                ),
            });
        }
    }
    let (mut g_opt, mut d_opt) = (optimizer(cfg), optimizer(cfg));
    let ckpt = checkpoint_dir(&opts.out);
    if resume {
        load_module(&mut g, &ckpt.join("g.bpk"))?;
        load_module(&mut d, &ckpt.join("d.bpk"))?;
        g_opt = g_opt
            .load(ckpt.join("g_optim.bpk"))
            .map_err(|e| GanError::io("load", &ckpt.join("g_optim.bpk"), e))?;
        d_opt = d_opt
            .load(ckpt.join("d_optim.bpk"))
            .map_err(|e| GanError::io("load", &ckpt.join("d_optim.bpk"), e))?;
    }
    // freezing survives neither saving nor loading: apply it after
    let g = g.freeze_earlier_stages();
    let mut g_ema = g.valid();
    if resume {
        load_module(&mut g_ema, &ckpt.join("g_ema.bpk"))?;
    }
    Ok(Nets {
        g,
        g_ema,
        d,
        g_opt,
        d_opt,
    })
}
