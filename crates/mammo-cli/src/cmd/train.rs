use mammo_models::DeviceSpec;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use mammo_train::{Select, Split, TrainConfig, TrainOptions, train};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `manifest.csv` written by `mammo preprocess` (one image size), optionally with
    /// synthetic rows (training folds only).
    #[arg(long)]
    pub manifest: PathBuf,
    /// Run folder (resumes from the last finished epoch when it holds the same run).
    #[arg(long)]
    pub out: PathBuf,
    /// TOML file with a `[train]` table (e.g. configs/paper.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Starting settings when no --config: `default` (paper protocol, folds grouped by
    /// patient) or `paper` (exactly the paper: folds stratified per image).
    #[arg(long, default_value = "default")]
    pub preset: String,
    /// timm model name (resnet18, resnet34, resnet50, resnet152, efficientnet_b0,
    /// maxvit_nano_rw_256, ...).
    #[arg(long)]
    pub model: Option<String>,
    /// timm `.safetensors` checkpoint to start from (e.g. ImageNet weights).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    #[arg(long, value_parser = crate::cmd::at_least::<2>)]
    pub folds: Option<usize>,
    /// Train only this fold (repeatable); run the others later into the same --out.
    #[arg(long = "fold")]
    pub only_folds: Vec<usize>,
    /// `patient` (stratified, grouped by patient) or `image` (stratified per image).
    #[arg(long, value_parser = ["patient", "image"])]
    pub split: Option<String>,
    #[arg(long, value_parser = crate::cmd::at_least::<1>)]
    pub epochs: Option<usize>,
    #[arg(long, value_parser = crate::cmd::at_least::<1>)]
    pub batch_size: Option<usize>,
    #[arg(long, value_parser = crate::cmd::positive)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Times each positive training image is seen per epoch (1 = no oversampling).
    #[arg(long, value_parser = crate::cmd::at_least::<1>)]
    pub oversample: Option<usize>,
    /// Which checkpoint gives the reported metrics: `last` (unbiased) or `best` (best
    /// validation AUC).
    #[arg(long, value_parser = super::select_parser())]
    pub select: Option<Select>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Stop after this many epochs in this call (the run stays resumable).
    #[arg(long, value_parser = crate::cmd::at_least::<1>)]
    pub stop_after_epochs: Option<usize>,
    /// Keep up to this many MB of decoded images in memory across epochs and folds (2 bytes a
    /// pixel: 64 MB holds 500 images at 256x256; 0 = none). For sets that fit, the epochs
    /// after the first read no PNG; results are unchanged.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1 << 24))]
    pub cache_mb: u64,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

impl Args {
    pub fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => {
                TrainConfig::from_toml_file(path).map_err(super::usage(path.display()))?
            }
            None => TrainConfig::preset(&self.preset)
                .map_err(super::usage(format_args!("--preset {}", self.preset)))?,
        };
        if let Some(v) = &self.model {
            c.model = v.clone();
        }
        if let Some(v) = &self.weights {
            c.pretrained = Some(v.clone());
        }
        if let Some(v) = self.folds {
            c.folds = v;
        }
        if !self.only_folds.is_empty() {
            c.only_folds = self.only_folds.clone();
        }
        if let Some(v) = &self.split {
            c.split = if v == "image" {
                Split::Image
            } else {
                Split::Patient
            };
        }
        if let Some(v) = self.epochs {
            c.epochs = v;
        }
        if let Some(v) = self.batch_size {
            c.batch_size = v;
            c.eval_batch_size = c.eval_batch_size.max(v);
        }
        if let Some(v) = self.lr {
            c.lr = v;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.oversample {
            c.oversample_positives = v;
        }
        if let Some(v) = self.select {
            c.select = v;
        }
        let source = match &self.config {
            Some(p) => format!("{} with the flags given", p.display()),
            None => format!("--preset {} with the flags given", self.preset),
        };
        c.validate().map_err(super::usage(source))?;
        Ok(c)
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    let cfg = args.config()?;
    let dev = super::open_device(args.device, true)?;
    let device = dev.device.clone();
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let opts = TrainOptions {
        manifest: args.manifest.clone(),
        out: args.out.clone(),
        device,
        progress,
        log: !args.quiet,
        stop_after_epochs: args.stop_after_epochs,
        cache_bytes: usize::try_from(args.cache_mb << 20).unwrap_or(usize::MAX),
    };
    if !args.quiet {
        eprintln!(
            "training {} on {} ({} folds, {} epochs, batch {}, lr {:e}, device {}) into {}",
            cfg.model,
            args.manifest.display(),
            cfg.folds,
            cfg.epochs,
            cfg.batch_size,
            cfg.lr,
            dev,
            args.out.display()
        );
    }
    let report =
        train(&cfg, &opts).with_context(|| format!("training into {}", args.out.display()))?;
    if report.complete {
        let md = std::fs::read_to_string(report.run.join("metrics.md")).unwrap_or_default();
        println!("{md}");
        println!(
            "run folder: {} ({} epochs trained in this call, {:.0} s)",
            report.run.display(),
            report.epochs_run,
            report.seconds
        );
    } else {
        println!(
            "stopped after {} epochs ({:.0} s); run the same command again to resume {}",
            report.epochs_run,
            report.seconds,
            report.run.display()
        );
    }
    Ok(Outcome::Ok)
}
