//! `mammo experiment`: the paper's Algorithm 1 end to end, cached by content, resumable.

use mammo_models::DeviceSpec;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use mammo_experiment::{ExperimentConfig, ExperimentOptions, Stage, run_experiment};

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
    let device = super::open_device(a.device.unwrap_or(config.experiment.device), a.quiet)?.device;
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let s = run_experiment(&ExperimentOptions {
        config,
        data: a.data,
        out: a.out,
        device,
        progress,
    })?;
    eprintln!(
        "done in {:.1} min ({} steps, {} reused from earlier calls)",
        s.seconds / 60.0,
        s.steps,
        s.steps_cached
    );
    println!("report: {}", s.report.display());
    Ok(if s.failed_images > 0 {
        Outcome::PartialFailure
    } else {
        Outcome::Ok
    })
}
