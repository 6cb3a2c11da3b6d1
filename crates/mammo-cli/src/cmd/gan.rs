//! `mammo gan train | generate | fid`.

use mammo_models::DeviceSpec;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use mammo_gan::data::{ImageSource, list_images, load_set};
use mammo_gan::metrics::{KidOptions, Reference};
use mammo_gan::{FeatureNet, GanConfig, GanTrainOptions, GenerateOptions, generate, train_gan};

use crate::Outcome;

#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Gan {
    /// Train a generator stage on real images: the stem at 16 px, or a super-resolution
    /// stage on top of a finished run (--stem). Resumable.
    Train(TrainArgs),
    /// Write synthetic positives (PNGs + manifest rows marked synthetic, label 1).
    Generate(GenerateArgs),
    /// FID and KID between two image sets.
    Fid(FidArgs),
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// A `mammo preprocess` manifest; rows with --label are used.
    #[arg(long, conflicts_with = "images", required_unless_present = "images")]
    pub manifest: Option<PathBuf>,
    /// Label of the manifest rows to learn (1: cancer, as the paper); `all` for every row.
    #[arg(long, default_value = "1")]
    pub label: String,
    /// A folder of grey PNGs instead of a manifest.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Run folder (resumes when it holds the same run).
    #[arg(long)]
    pub out: PathBuf,
    /// Output resolution of this stage: generator.stem_res (16) without --stem.
    #[arg(long, default_value_t = 16, value_parser = crate::cmd::at_least::<4>)]
    pub res: usize,
    /// A finished run to grow: its generator becomes the frozen stem of this stage.
    #[arg(long)]
    pub stem: Option<PathBuf>,
    /// `cpu` (default), `gan-paper`, or a TOML file (e.g. configs/gan-paper.toml). A --stem
    /// run's own config is used when this is not given.
    #[arg(long)]
    pub config: Option<String>,
    /// Thousands of real images to show in this stage (overrides the config).
    #[arg(long, value_parser = crate::cmd::positive)]
    pub kimg: Option<f64>,
    #[arg(long, value_parser = crate::cmd::at_least::<1>)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Discriminator feature network (registered model) and its timm weights.
    #[arg(long)]
    pub backbone: Option<String>,
    #[arg(long)]
    pub backbone_weights: Option<PathBuf>,
    /// Network for FID/KID during training: `inception` (with --fid-weights) or a registered
    /// model; default: the discriminator's backbone and weights.
    #[arg(long)]
    pub fid_features: Option<String>,
    /// Its weights (timm or a mammo run's `.safetensors`).
    #[arg(long)]
    pub fid_weights: Option<PathBuf>,
    /// Evaluate FID/KID every this many kimg (0: at the end only).
    #[arg(long, value_parser = crate::cmd::non_negative)]
    pub metric_kimg: Option<f64>,
    /// Checkpoint and sample grid every this many kimg.
    #[arg(long, value_parser = crate::cmd::non_negative)]
    pub snap_kimg: Option<f64>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Stop after this many kimg in this call (the run stays resumable).
    #[arg(long, value_parser = crate::cmd::positive)]
    pub stop_after_kimg: Option<f64>,
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// A finished `mammo gan train` run.
    #[arg(long)]
    pub run: PathBuf,
    #[arg(long, default_value_t = 1000, value_parser = crate::cmd::at_least::<1>)]
    pub n: usize,
    #[arg(long)]
    pub out: PathBuf,
    /// Truncation psi (1: none; smaller trades variety for typicality).
    #[arg(long, default_value_t = 1.0, value_parser = crate::cmd::non_negative)]
    pub truncation: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Put this manifest's rows first in the written manifest, so it trains directly (real
    /// images plus synthetic positives).
    #[arg(long)]
    pub with_manifest: Option<PathBuf>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct FidArgs {
    /// Folder of real PNGs (recursive) or a manifest.csv.
    #[arg(long)]
    pub real: PathBuf,
    /// Folder of generated PNGs (recursive) or a manifest.csv.
    #[arg(long)]
    pub fake: PathBuf,
    /// Feature network: `inception` (pytorch-fid's Inception-v3 pool3, FID proper; needs
    /// --weights) or a registered model (its pooled last feature map, a labelled fallback).
    #[arg(long, default_value = "inception")]
    pub features: String,
    /// Weights of the feature network: for `inception` the safetensors file converted from
    /// pytorch-fid's pt_inception-2015-12-05-6726825d.pth (tools/convert_pt_inception.py);
    /// for a registered model timm or mammo `.safetensors` (without them it is randomly
    /// initialised and labelled so).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Images are loaded at this square size (the feature network then resizes them to its
    /// own input size: 299 for Inception).
    #[arg(long, default_value_t = 64, value_parser = crate::cmd::at_least::<4>)]
    pub res: usize,
    #[arg(long, default_value_t = 100, value_parser = crate::cmd::at_least::<1>)]
    pub kid_subsets: usize,
    #[arg(long, default_value_t = 1000, value_parser = crate::cmd::at_least::<2>)]
    pub kid_subset_size: usize,
    /// Write the result as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
}

pub fn run(cmd: Gan) -> Result<Outcome> {
    match cmd {
        Gan::Train(a) => train(a),
        Gan::Generate(a) => run_generate(a),
        Gan::Fid(a) => fid(a),
    }
}

fn train(a: TrainArgs) -> Result<Outcome> {
    let mut cfg = match (&a.config, &a.stem) {
        (Some(spec), _) => {
            GanConfig::load(spec).map_err(super::usage(format_args!("--config {spec}")))?
        }
        (None, Some(stem)) => {
            let p = stem.join("gan_config.json");
            serde_json::from_str(
                &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("parsing {}", p.display()))?
        }
        (None, None) => GanConfig::cpu(),
    };
    if let Some(v) = a.kimg {
        cfg.training.kimg = v;
    }
    if let Some(v) = a.batch_size {
        cfg.training.batch_size = v;
    }
    if let Some(v) = a.seed {
        cfg.training.seed = v;
    }
    if let Some(v) = &a.backbone {
        cfg.discriminator.backbone = v.clone();
    }
    if let Some(v) = &a.backbone_weights {
        cfg.discriminator.backbone_weights = Some(v.clone());
    }
    if let Some(v) = a.metric_kimg {
        cfg.training.metric_kimg = v;
    }
    if let Some(v) = a.snap_kimg {
        cfg.training.snap_kimg = v;
    }
    cfg.validate()
        .map_err(super::usage("the GAN settings with the flags given"))?;
    let source = match (&a.manifest, &a.images) {
        (Some(m), _) => ImageSource::Manifest {
            path: m.clone(),
            label: match a.label.as_str() {
                "all" => None,
                l => match mammo_dataset::parse_label("--label", l) {
                    Ok(Some(cancer)) => Some(cancer),
                    _ => return Err(super::UsageError(format!("--label {l}: 0, 1 or all")).into()),
                },
            },
        },
        (None, Some(d)) => ImageSource::Folder(d.clone()),
        (None, None) => {
            return Err(super::UsageError("give --manifest or --images".into()).into());
        }
    };
    let metric_features = match (&a.fid_features, &a.fid_weights) {
        (None, None) => None,
        (name, w) => Some((
            name.clone()
                .unwrap_or_else(|| cfg.discriminator.backbone.clone()),
            w.clone(),
        )),
    };
    let device = super::open_device(a.device, a.quiet)?.device;
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let opts = GanTrainOptions {
        source,
        out: a.out.clone(),
        res: a.res,
        stem: a.stem.clone(),
        device,
        metric_features,
        progress,
        log: !a.quiet,
        stop_after_kimg: a.stop_after_kimg,
    };
    if !a.quiet {
        let g = &cfg.generator;
        eprintln!(
            "GAN stage {} px{} into {}: cbase {} cmax {} syn_layers {} head_layers {}, {} \
             backbone {} at {} px, batch {}, {} kimg",
            a.res,
            a.stem
                .as_ref()
                .map_or(String::new(), |s| format!(" on stem {}", s.display())),
            a.out.display(),
            g.cbase,
            g.cmax,
            g.syn_layers,
            g.head_layers,
            if cfg.discriminator.backbone_weights.is_some() {
                "pretrained"
            } else {
                "randomly initialised"
            },
            cfg.discriminator.backbone,
            cfg.discriminator.feature_res,
            cfg.training.batch_size,
            cfg.training.kimg
        );
    }
    let s = train_gan(&cfg, &opts)
        .with_context(|| format!("training the GAN into {}", a.out.display()))?;
    println!(
        "{} kimg in {:.0} s ({:.3} kimg/s); {} training, {} held-out images",
        s.kimg, s.seconds, s.kimg_per_s, s.train_images, s.holdout_images
    );
    if !s.metrics.is_empty() {
        println!("FID/KID against the held-out images ({}):", s.features);
        if let Some(f) = s.fid_real_vs_holdout {
            println!("  real training images: FID {f:.3} (the floor for these sample counts)");
        }
        for m in &s.metrics {
            println!(
                "  kimg {:7.1}: FID {:8.3}  KID {:.5} ± {:.5}",
                m.kimg, m.fid, m.kid, m.kid_std
            );
        }
    }
    if s.done {
        println!(
            "done: {} (samples/progress.png shows the samples over training)",
            s.run.display()
        );
    } else {
        println!(
            "stopped; run the same command again to resume {}",
            s.run.display()
        );
    }
    Ok(Outcome::Ok)
}

fn run_generate(a: GenerateArgs) -> Result<Outcome> {
    let device = super::open_device(a.device, a.quiet)?.device;
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let r = generate(&GenerateOptions {
        run: a.run.clone(),
        n: a.n,
        out: a.out.clone(),
        truncation: a.truncation,
        seed: a.seed,
        base_manifest: a.with_manifest.clone(),
        device,
        progress,
    })
    .with_context(|| format!("generating from {}", a.run.display()))?;
    println!(
        "{} synthetic {}x{} positives (psi {}, seed {}) in {}; manifest {} ({} real rows first)",
        r.n,
        r.res,
        r.res,
        r.truncation,
        r.seed,
        a.out.display(),
        r.manifest.display(),
        r.base_rows
    );
    Ok(Outcome::Ok)
}

fn image_set(path: &std::path::Path, res: usize) -> Result<mammo_gan::data::ImageSet> {
    let source = if path.is_dir() {
        ImageSource::Folder(path.to_path_buf())
    } else {
        ImageSource::Manifest {
            path: path.to_path_buf(),
            label: None,
        }
    };
    let images = list_images(&source)?;
    Ok(load_set(images, res)?)
}

fn fid(a: FidArgs) -> Result<Outcome> {
    let device = super::open_device(a.device, false)?.device;
    let net = FeatureNet::by_name(&a.features, a.weights.as_deref(), &device)?;
    let real = image_set(&a.real, a.res)?;
    let fake = image_set(&a.fake, a.res)?;
    let reference = Reference::new(&net, &real.values, real.len(), a.res, &device)?;
    let kid = KidOptions {
        subsets: a.kid_subsets,
        subset_size: a.kid_subset_size,
        seed: 0,
    };
    let d = reference.distance(&net, &fake.values, fake.len(), a.res, kid, &device)?;
    let (fid, kid) = (d.fid, d.kid);
    println!("features: {}", net.label());
    println!("real {} images, fake {} images", d.real, d.fake);
    println!("FID {fid:.4}");
    println!(
        "KID {:.6} ± {:.6} ({} subsets of {})",
        kid.mean, kid.std, kid.subsets, kid.subset_size
    );
    if let Some(p) = &a.json {
        let v = serde_json::json!({
            "features": net.label(),
            "real": d.real,
            "fake": d.fake,
            "fid": fid,
            "kid": kid,
        });
        std::fs::write(p, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(Outcome::Ok)
}
