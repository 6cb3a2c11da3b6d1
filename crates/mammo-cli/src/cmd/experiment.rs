//! `mammo experiment`: the paper's Algorithm 1 end to end, cached by content, resumable.

use mammo_models::DeviceSpec;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use mammo_experiment::{
    ExperimentConfig, ExperimentError, ExperimentOptions, Stage, run_experiment,
};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment file (configs/demo.toml, configs/paper.toml): `[experiment]`, `[phantom]`,
    /// `[train]` and `[explain]` tables.
    #[arg(long)]
    pub config: PathBuf,
    /// RSNA-layout folder (train.csv, train_images/, optional lesions.csv); without it the
    /// `[phantom]` set is generated.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output folder; steps already done there are reused, unfinished ones resume.
    #[arg(long, default_value = "experiment-out")]
    pub out: PathBuf,
    /// Override experiment.stages (comma-separated: original, processed, augmented).
    #[arg(long, value_delimiter = ',')]
    pub stages: Vec<Stage>,
    /// Override experiment.models (comma-separated timm names).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Override experiment.resolutions (comma-separated square sizes).
    #[arg(long, value_delimiter = ',', value_parser = crate::cmd::pixels)]
    pub resolutions: Vec<u32>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    /// Overrides the config's `experiment.device` (default auto).
    #[arg(long)]
    pub device: Option<DeviceSpec>,
    /// Folder of timm checkpoints in the Hugging Face hub cache layout (for example
    /// ~/.cache/huggingface/hub, where timm keeps its downloads:
    /// models--timm--<name>.<tag>/snapshots/<rev>/model.safetensors): the pretrained weights of
    /// each model that `[weights]` does not name. A model with neither trains from scratch.
    #[arg(long, value_name = "DIR")]
    pub weights_dir: Option<PathBuf>,
    /// Reuse steps done by an earlier build of mammo whose code differs (same settings and
    /// inputs). By default a step whose code changed runs again.
    #[arg(long)]
    pub reuse_stale: bool,
    /// Print the steps the experiment takes, one a line, and stop: nothing is run, opened or
    /// written (not even --out).
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: Args) -> Result<Outcome> {
    let mut config =
        ExperimentConfig::from_toml_file(&a.config).map_err(super::usage(a.config.display()))?;
    if !a.stages.is_empty() {
        config.experiment.stages = a.stages;
    }
    if !a.models.is_empty() {
        config.experiment.models = a.models;
    }
    if !a.resolutions.is_empty() {
        config.experiment.resolutions = a.resolutions;
    }
    if let Err(e) = config.validate() {
        return Err(super::UsageError(format!("{}: {e}", a.config.display())).into());
    }
    if a.dry_run {
        let steps = mammo_experiment::plan(&config, a.data.is_none());
        for (i, step) in steps.iter().enumerate() {
            println!("[{}/{}] {step}", i + 1, steps.len());
        }
        return Ok(Outcome::Ok);
    }
    let device = super::open_device(a.device.unwrap_or(config.experiment.device), a.quiet)?.device;
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let s = run_experiment(&ExperimentOptions {
        config,
        data: a.data,
        out: a.out,
        device,
        progress,
        reuse_stale: a.reuse_stale,
        weights_dir: a.weights_dir,
    })
    .map_err(|e| match e {
        // Settings or inputs no run can satisfy (a missing weights file, a data folder that
        // is not RSNA's layout): usage errors, exit 2.
        ExperimentError::Invalid(reason) => anyhow::Error::new(super::UsageError(reason)),
        e @ (ExperimentError::InvalidField { .. } | ExperimentError::Settings(_)) => {
            anyhow::Error::new(super::UsageError(e.to_string()))
        }
        other => other.into(),
    })?;
    eprintln!(
        "done in {:.1} min ({} steps, {} reused from earlier calls{})",
        s.seconds / 60.0,
        s.steps,
        s.steps_cached,
        if s.steps_stale > 0 {
            format!(
                ", {} of them done by an earlier build (--reuse-stale)",
                s.steps_stale
            )
        } else {
            String::new()
        }
    );
    println!("report: {}", s.report.display());
    Ok(if s.failed_images > 0 {
        Outcome::PartialFailure
    } else {
        Outcome::Ok
    })
}
