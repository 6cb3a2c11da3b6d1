use mammo_models::DeviceSpec;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, bail};
use mammo_train::{Ensemble, Select, evaluate_manifest, evaluate_run};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folder written by `mammo train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Evaluate the run's fold ensemble on this (held-out) manifest instead of re-scoring
    /// its out-of-fold predictions.
    #[arg(long, requires = "out")]
    pub manifest: Option<PathBuf>,
    /// Output folder for --manifest (predictions.csv, metrics.json, metrics.md).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Weights of each fold: `last` or `best` (default: the run's choice).
    #[arg(long, value_parser = super::select_parser())]
    pub select: Option<Select>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: Args) -> Result<Outcome> {
    match (&args.manifest, &args.out) {
        (None, _) => {
            if args.select.is_some() {
                bail!(
                    "--select applies to --manifest evaluation; the run's own metrics use its \
                     train config's `select`"
                );
            }
            evaluate_run(&args.run)?;
            print!("{}", std::fs::read_to_string(args.run.join("metrics.md"))?);
            println!(
                "\nwritten: {}/metrics.json, metrics.md, oof_predictions.csv, plots/",
                args.run.display()
            );
        }
        (Some(manifest), Some(out)) => {
            let device = super::open_device(args.device, args.quiet)?.device;
            let select = args.select;
            let ens = Ensemble::load(&args.run, select, &device)?;
            let progress = !args.quiet && std::io::stderr().is_terminal();
            evaluate_manifest(&ens, manifest, out, progress)?;
            print!("{}", std::fs::read_to_string(out.join("metrics.md"))?);
        }
        (Some(_), None) => bail!("--manifest needs --out"),
    }
    Ok(Outcome::Ok)
}
