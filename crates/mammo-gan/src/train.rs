//! The training loop of one stage (the stem at `stem_res`, or a super-resolution stage on top
//! of a finished run): alternating hinge-loss steps of the projected discriminator and the
//! generator, the generator's EMA, blur fading out of the discriminator's inputs, FID/KID of
//! the EMA generator against held-out real images, sample grids, and checkpoints from which
//! a killed run resumes.
//!
//! A run folder holds `gan_config.json` (the resolved config), `generator.json` (the
//! architecture), `data.json` (which images trained and which were held out),
//! `checkpoint/` (generator, EMA, discriminator, both optimisers, `state.json`), `log.csv`
//! (one row per tick), `metrics.csv` (FID/KID over training), `samples/` (grids over
//! training, `reals.png`, `progress.png`), and when finished `generator.bpk` (the EMA
//! generator) and `summary.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use mammo_rand::{Rng, derive};

use crate::augment::DiffAugment;
use crate::config::GanConfig;
use crate::data::{ImageSource, RealData, load_real, source_path};
use crate::error::{GanError, Result};
use crate::features::FeatureNet;
use crate::generator::{Generator, GeneratorArch};
use crate::grid::{write_grid, write_progress};
use crate::layers::Noise;
use crate::metrics::{KidOptions, Reference};
use crate::nets::{
    DiscriminatorStep, Nets, StepContext, build, checkpoint_dir, latents, save_checkpoint,
    save_module,
};

/// How and where to train.
#[derive(Debug, Clone)]
pub struct GanTrainOptions {
    pub source: ImageSource,
    pub out: PathBuf,
    /// Output resolution of this stage.
    pub res: usize,
    /// A finished run whose generator becomes the frozen stem of this stage.
    pub stem: Option<PathBuf>,
    /// Plain device; training uses its autodiff twin.
    pub device: Device,
    /// Network for FID/KID; `None`: the discriminator's backbone and weights.
    pub metric_features: Option<(String, Option<PathBuf>)>,
    pub progress: bool,
    pub log: bool,
    /// Stop after this many kimg in this call (the run stays resumable).
    pub stop_after_kimg: Option<f64>,
}

/// One tick in `log.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub kimg: f64,
    pub loss_d: f64,
    pub loss_g: f64,
    pub d_real: f64,
    pub d_fake: f64,
    pub blur_sigma: f64,
    pub sec_per_kimg: f64,
}

/// One evaluation in `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub kimg: f64,
    pub fid: f64,
    pub kid: f64,
    pub kid_std: f64,
    pub fake: usize,
    pub real: usize,
}

/// `checkpoint/state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanState {
    pub nimg: u64,
    pub step: u64,
    pub seconds: f64,
    pub ticks: Vec<Tick>,
    pub metrics: Vec<MetricRow>,
    pub grids: Vec<String>,
    pub done: bool,
}

/// `summary.json` and what [`train_gan`] returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanSummary {
    pub run: PathBuf,
    pub resolutions: Vec<usize>,
    pub kimg: f64,
    pub seconds: f64,
    pub kimg_per_s: f64,
    pub train_images: usize,
    pub holdout_images: usize,
    pub features: String,
    /// FID between the training and held-out real images: the floor a perfect generator
    /// would reach with these feature and sample counts.
    pub fid_real_vs_holdout: Option<f64>,
    pub metrics: Vec<MetricRow>,
    pub done: bool,
}

/// What trained and what was held out (`data.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DataRecord {
    source: ImageSource,
    res: usize,
    train: Vec<String>,
    holdout: Vec<String>,
}

pub(crate) fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    Ok(mammo_io::write_json(path, v)?)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    Ok(mammo_io::read_json(path)?)
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    Ok(mammo_io::write_csv(path, rows)?)
}

/// The architecture of a finished run's generator.
pub fn read_arch(run: &Path) -> Result<GeneratorArch> {
    read_json(&run.join("generator.json"))
}

/// A finished run's EMA generator, on `device`.
pub fn load_generator(run: &Path, device: &Device) -> Result<(Generator, GeneratorArch)> {
    let arch = read_arch(run)?;
    let path = run.join("generator.bpk");
    if !path.exists() {
        return Err(GanError::Run {
            run: run.into(),
            reason: "no generator.bpk: the run has not finished (run mammo gan train again to \
                     resume it)"
                .into(),
        });
    }
    let mut g = Generator::new(&arch, device);
    let mut store = BurnpackStore::from_file(&path);
    g.load_from(&mut store)
        .map_err(|e| GanError::io("load", &path, e))?;
    Ok((g, arch))
}

/// `n` images from the EMA generator (plain device), `[n, 1, R, R]` values.
pub fn sample(
    g: &Generator,
    z_dim: usize,
    n: usize,
    seed: u64,
    psi: f64,
    batch: usize,
    device: &Device,
) -> Vec<f32> {
    let mut rng = Rng::from_keys(seed, &[0x7361_6d70]);
    let mut out = Vec::new();
    let mut done = 0;
    while done < n {
        let b = batch.min(n - done);
        let z = latents(&mut rng, b, z_dim, device);
        let img = mammo_models::seeded(device, derive(seed, &[0x6e6f_6973, done as u64]), || {
            g.forward(z, psi, Noise::Random)
        });
        out.extend(img.into_data().try_into_vec::<f32>().expect("f32 images"));
        done += b;
    }
    out
}

/// FID/KID of the generator during training, against the held-out real images.
struct Evaluator {
    net: FeatureNet,
    reference: Reference,
    /// FID of the training images against the held-out ones: what a perfect generator of
    /// the training set would score.
    floor: Option<f64>,
}

impl Evaluator {
    fn new(net: FeatureNet, data: &RealData, device: &Device) -> Result<Option<Self>> {
        let (h, t) = (&data.holdout, &data.train);
        if h.len() < 2 {
            return Ok(None);
        }
        let reference = Reference::new(&net, &h.values, h.len(), h.res, device)?;
        let floor = reference.fid(&net, &t.values, t.len(), h.res, device)?;
        Ok(Some(Self {
            net,
            reference,
            floor,
        }))
    }

    fn evaluate(
        &self,
        g: &Generator,
        cfg: &GanConfig,
        res: usize,
        kimg: f64,
        device: &Device,
    ) -> Result<MetricRow> {
        let t = &cfg.training;
        let n = t.metric_samples.max(2);
        let seed = derive(t.seed, &[0x6d65_7472]);
        let imgs = sample(g, cfg.generator.z_dim, n, seed, 1.0, 32, device);
        let kid = KidOptions {
            subsets: t.kid_subsets,
            subset_size: t.kid_subset_size,
            seed: t.seed,
        };
        let d = self
            .reference
            .distance(&self.net, &imgs, n, res, kid, device)?;
        Ok(MetricRow {
            kimg,
            fid: d.fid,
            kid: d.kid.mean,
            kid_std: d.kid.std,
            fake: d.fake,
            real: d.real,
        })
    }
}

/// A snapshot: the exponential-moving-average generator's sample grid at this kimg (the same
/// latents every time), the progress strip of every grid so far, the tick log and a
/// checkpoint to resume from.
fn snapshot(
    out: &Path,
    nets: &Nets,
    st: &mut GanState,
    cfg: &GanConfig,
    res: usize,
    plain: &Device,
) -> Result<()> {
    let cols = cfg.training.grid;
    let n = cols * cols;
    let grid_z_seed = derive(cfg.training.seed, &[0x6772_6964]);
    let imgs = sample(
        &nets.g_ema,
        cfg.generator.z_dim,
        n,
        grid_z_seed,
        1.0,
        32,
        plain,
    );
    let name = format!("samples/kimg-{:08.3}.png", st.nimg as f64 / 1000.0);
    write_grid(&out.join(&name), &imgs, n, res, cols)?;
    if st.grids.last() != Some(&name) {
        st.grids.push(name);
    }
    let grids: Vec<PathBuf> = st.grids.iter().map(|g| out.join(g)).collect();
    write_progress(&out.join("samples/progress.png"), &grids, res)?;
    write_csv(&out.join("log.csv"), &st.ticks)?;
    save_checkpoint(out, nets, st)
}

/// The losses and discriminator outputs summed over the steps of a tick.
struct TickSums {
    d: f64,
    g: f64,
    real: f64,
    fake: f64,
    count: usize,
    started: Instant,
    start_nimg: u64,
}

impl TickSums {
    fn new(nimg: u64) -> Self {
        Self {
            d: 0.0,
            g: 0.0,
            real: 0.0,
            fake: 0.0,
            count: 0,
            started: Instant::now(),
            start_nimg: nimg,
        }
    }

    fn add(&mut self, d: &DiscriminatorStep, loss_g: f32) {
        self.d += d.loss as f64;
        self.g += loss_g as f64;
        self.real += d.d_real as f64;
        self.fake += d.d_fake as f64;
        self.count += 1;
    }

    /// Mean discriminator and generator losses so far.
    fn losses(&self) -> (f64, f64) {
        let n = self.count as f64;
        (self.d / n, self.g / n)
    }

    /// The tick's record at `nimg`; the sums start again.
    fn finish(&mut self, nimg: u64, sigma: f64) -> Tick {
        let dt = self.started.elapsed().as_secs_f64();
        let dk = (nimg - self.start_nimg) as f64 / 1000.0;
        let n = self.count as f64;
        let tick = Tick {
            kimg: nimg as f64 / 1000.0,
            loss_d: self.d / n,
            loss_g: self.g / n,
            d_real: self.real / n,
            d_fake: self.fake / n,
            blur_sigma: sigma,
            sec_per_kimg: dt / dk.max(1e-9),
        };
        *self = Self::new(nimg);
        tick
    }
}

fn load_state(out: &Path) -> Result<Option<GanState>> {
    let ckpt = checkpoint_dir(out);
    mammo_image::recover_dir(&ckpt).map_err(|e| GanError::io("restore", &ckpt, e))?;
    let p = ckpt.join("state.json");
    if !p.exists() {
        return Ok(None);
    }
    read_json(&p).map(Some)
}

/// The generator to train: a stem at `generator.stem_res`, or the stem run's generator
/// grown by one stage to `opts.res`.
fn resolve_arch(cfg: &GanConfig, opts: &GanTrainOptions) -> Result<GeneratorArch> {
    let arch = match &opts.stem {
        None => {
            if opts.res != cfg.generator.stem_res {
                return Err(GanError::Config(format!(
                    "--res {} without --stem: the stem trains at generator.stem_res = {} px; \
                     train that first, then grow it with --stem RUN --res {}",
                    opts.res, cfg.generator.stem_res, opts.res
                )));
            }
            GeneratorArch::stem(&cfg.generator)
        }
        Some(stem) => {
            let prev = read_arch(stem)?;
            if !stem.join("generator.bpk").exists() {
                return Err(GanError::Run {
                    run: stem.clone(),
                    reason: "has no generator.bpk; finish it first".into(),
                });
            }
            if prev.config != cfg.generator {
                return Err(GanError::Config(format!(
                    "the generator settings differ from the stem run {}'s; use its gan_config.json",
                    stem.display()
                )));
            }
            prev.grown(opts.res)?
        }
    };
    Ok(arch)
}

/// A run folder belongs to one config and architecture: a new one records them, an old one
/// must hold the same.
fn claim_run(out: &Path, cfg: &GanConfig, arch: &GeneratorArch) -> Result<()> {
    let cfg_path = out.join("gan_config.json");
    if cfg_path.exists() {
        let old: GanConfig = read_json(&cfg_path)?;
        let old_arch = read_arch(out)?;
        if old != *cfg || old_arch != *arch {
            return Err(GanError::Run {
                run: out.to_path_buf(),
                reason: "was started with other settings; use a new --out or the same config"
                    .into(),
            });
        }
    } else {
        write_json(&cfg_path, cfg)?;
        mammo_image::write_atomic(&out.join("generator.json"), arch.to_json().as_bytes())
            .map_err(|e| GanError::io("write", out, e))?;
    }
    Ok(())
}

/// The real images at `res`, split into training and held-out images; the split is recorded
/// in `data.json`, and a resumed run refuses images that changed since.
fn load_and_record_data(cfg: &GanConfig, opts: &GanTrainOptions, res: usize) -> Result<RealData> {
    let out = &opts.out;
    let data = load_real(
        &opts.source,
        res,
        cfg.training.holdout_fraction,
        cfg.training.seed,
    )?;
    let record = DataRecord {
        source: opts.source.clone(),
        res,
        train: data
            .train
            .images
            .iter()
            .map(|i| i.image_id.clone())
            .collect(),
        holdout: data
            .holdout
            .images
            .iter()
            .map(|i| i.image_id.clone())
            .collect(),
    };
    let data_path = out.join("data.json");
    if data_path.exists() {
        let old: DataRecord = read_json(&data_path)?;
        if old.train != record.train || old.holdout != record.holdout {
            return Err(GanError::Run {
                run: out.clone(),
                reason: format!(
                    "the images of {} changed since the run started",
                    source_path(&opts.source).display()
                ),
            });
        }
    } else {
        write_json(&data_path, &record)?;
    }
    Ok(data)
}

/// Trains (or resumes) one stage.
pub fn train_gan(cfg: &GanConfig, opts: &GanTrainOptions) -> Result<GanSummary> {
    cfg.validate()?;
    if cfg.generator.img_channels != 1 {
        return Err(GanError::Config(
            "training reads grey PNGs: generator.img_channels must be 1".into(),
        ));
    }
    let out = &opts.out;
    std::fs::create_dir_all(out.join("samples")).map_err(|e| GanError::io("create", out, e))?;
    // One writer per run folder; what killed writers left half-written goes first.
    let _lock = mammo_image::OutputLock::acquire(out, "mammo gan train")?;
    mammo_image::sweep_temp_files(out)
        .map_err(|e| GanError::io("clean temporary files in", out, e))?;

    let arch = resolve_arch(cfg, opts)?;
    claim_run(out, cfg, &arch)?;
    let res = arch.output_res();
    let data = load_and_record_data(cfg, opts, res)?;
    let g_cols = cfg.training.grid;
    write_grid(
        &out.join("samples/reals.png"),
        &data.train.values[..data.train.len().min(g_cols * g_cols) * res * res],
        data.train.len().min(g_cols * g_cols),
        res,
        g_cols,
    )?;

    let plain = opts.device.clone().inner();
    let device = plain.clone().autodiff();
    let state = load_state(out)?;
    let resume = state.is_some();
    let mut st = state.unwrap_or(GanState {
        nimg: 0,
        step: 0,
        seconds: 0.0,
        ticks: Vec::new(),
        metrics: Vec::new(),
        grids: Vec::new(),
        done: false,
    });
    let mut nets = build(cfg, &arch, opts, resume, &device)?;

    let net = match &opts.metric_features {
        Some((name, w)) => FeatureNet::by_name(name, w.as_deref(), &plain)?,
        None => FeatureNet::backbone(
            &cfg.discriminator.backbone,
            cfg.discriminator.backbone_weights.as_deref(),
            &plain,
        )?,
    };
    let features = net.label().to_string();
    let evaluator = Evaluator::new(net, &data, &plain)?;
    if evaluator.is_none() && opts.log {
        eprintln!("note: fewer than 2 held-out images; FID/KID are skipped");
    }

    let t = &cfg.training;
    let total = (t.kimg * 1000.0) as u64;
    let mut ctx = StepContext {
        cfg,
        augment: DiffAugment::from_policies(&cfg.policies()),
        device: device.clone(),
        plain: plain.clone(),
        sigma: 0.0,
        stem_training: arch.stages() == 1,
    };
    let budget_end = opts.stop_after_kimg.map(|k| st.nimg + (k * 1000.0) as u64);
    let next_at = |nimg: u64, every: f64| {
        if every <= 0.0 {
            u64::MAX
        } else {
            ((nimg as f64 / (every * 1000.0)).floor() as u64 + 1) * (every * 1000.0) as u64
        }
    };
    let (mut next_tick, mut next_snap, mut next_metric) = (
        next_at(st.nimg, t.tick_kimg),
        next_at(st.nimg, t.snap_kimg),
        next_at(st.nimg, t.metric_kimg),
    );

    let pb = mammo_io::progress_bar(opts.progress, total, format!("gan {res}px"));
    pb.set_position(st.nimg.min(total));
    let started = Instant::now();
    let seconds_before = st.seconds;
    let mut sums = TickSums::new(st.nimg);

    let mut metric_due = !resume && evaluator.is_some() && t.metric_kimg > 0.0;
    while !st.done {
        if metric_due {
            if let Some(ev) = &evaluator {
                let row = ev.evaluate(&nets.g_ema, cfg, res, st.nimg as f64 / 1000.0, &plain)?;
                if opts.log {
                    pb.suspend(|| {
                        eprintln!(
                            "kimg {:.1}: FID {:.3}  KID {:.5} ± {:.5}",
                            row.kimg, row.fid, row.kid, row.kid_std
                        )
                    });
                }
                st.metrics.push(row);
                write_csv(&out.join("metrics.csv"), &st.metrics)?;
            }
            metric_due = false;
        }
        if st.nimg >= total || budget_end.is_some_and(|e| st.nimg >= e) {
            break;
        }
        let mut rng = Rng::from_keys(t.seed, &[0x7374_6570, arch.stages() as u64, st.step]);
        let step_seed = derive(t.seed, &[0x6e6f_6973, arch.stages() as u64, st.step]);
        let kimg = st.nimg as f64 / 1000.0;
        ctx.sigma = cfg.discriminator.blur_sigma
            * (1.0 - kimg / cfg.discriminator.blur_fade_kimg.max(1e-9)).max(0.0);
        // The step's noise inputs and augmentations draw from burn's generator: the whole
        // step runs under the seeding lock, so they follow the step's seed alone.
        let (d_step, loss_g);
        (nets, d_step, loss_g) = mammo_models::seeded(&device, step_seed, || {
            let (nets, d_step) = nets.discriminator_step(&ctx, &data.train, &mut rng);
            let (nets, loss_g) = nets.generator_step(&ctx, &mut rng);
            (nets, d_step, loss_g)
        });
        if !(d_step.loss.is_finite() && loss_g.is_finite()) {
            return Err(GanError::Diverged(format!(
                "loss D {}, G {loss_g} at kimg {kimg:.2} of {}",
                d_step.loss,
                out.display()
            )));
        }
        st.nimg += t.batch_size as u64;
        st.step += 1;
        nets = nets.ema_step(cfg, st.nimg);

        sums.add(&d_step, loss_g);
        pb.set_position(st.nimg.min(total));
        let elapsed = seconds_before + started.elapsed().as_secs_f64();
        let (mean_d, mean_g) = sums.losses();
        pb.set_message(format!(
            "kimg {:.2}/{:.0}  D {mean_d:.3}  G {mean_g:.3}  {:.2} kimg/min",
            st.nimg as f64 / 1000.0,
            t.kimg,
            st.nimg as f64 / 1000.0 / elapsed.max(1e-9) * 60.0
        ));

        let finished = st.nimg >= total;
        if st.nimg >= next_tick || finished {
            let tick = sums.finish(st.nimg, ctx.sigma);
            if opts.log {
                pb.suspend(|| {
                    eprintln!(
                        "kimg {:7.2}  loss D {:.4}  G {:.4}  D(real) {:+.3}  D(fake) {:+.3}  \
                         blur {:.2}  {:.1} s/kimg",
                        tick.kimg,
                        tick.loss_d,
                        tick.loss_g,
                        tick.d_real,
                        tick.d_fake,
                        tick.blur_sigma,
                        tick.sec_per_kimg
                    )
                });
            }
            st.ticks.push(tick);
            next_tick = next_at(st.nimg, t.tick_kimg);
        }
        if st.nimg >= next_metric || finished {
            metric_due = evaluator.is_some();
            next_metric = next_at(st.nimg, t.metric_kimg);
        }
        let stopping = budget_end.is_some_and(|e| st.nimg >= e);
        if st.nimg >= next_snap || finished || stopping {
            st.seconds = seconds_before + started.elapsed().as_secs_f64();
            snapshot(out, &nets, &mut st, cfg, res, &plain)?;
            next_snap = next_at(st.nimg, t.snap_kimg);
        }
    }
    pb.finish_and_clear();

    st.seconds = seconds_before + started.elapsed().as_secs_f64();
    if st.nimg >= total && !st.done {
        save_module(&nets.g_ema, &out.join("generator.bpk.tmp"))?;
        std::fs::rename(out.join("generator.bpk.tmp"), out.join("generator.bpk"))
            .map_err(|e| GanError::io("rename", out, e))?;
        st.done = true;
    }
    save_checkpoint(out, &nets, &st)?;
    let kimg = st.nimg as f64 / 1000.0;
    let summary = GanSummary {
        run: out.clone(),
        resolutions: arch.resolutions.clone(),
        kimg,
        seconds: st.seconds,
        kimg_per_s: kimg / st.seconds.max(1e-9),
        train_images: data.train.len(),
        holdout_images: data.holdout.len(),
        features,
        fid_real_vs_holdout: evaluator.as_ref().and_then(|e| e.floor),
        metrics: st.metrics.clone(),
        done: st.done,
    };
    write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}
