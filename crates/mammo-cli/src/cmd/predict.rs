use std::path::PathBuf;

use anyhow::Result;
use mammo_models::DeviceSpec;
use mammo_train::{Ensemble, Select, predict_images};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folder written by `mammo train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Images: PNGs from `mammo preprocess` at the run's size, or DICOM files (processed
    /// with the training set's saved preprocessing settings).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Weights of each fold: `last` or `best` (default: the run's choice).
    #[arg(long, value_parser = ["last", "best"])]
    pub select: Option<String>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Also write the predictions as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<Outcome> {
    let device = super::open_device(args.device, false)?.device;
    let select = args.select.as_deref().map(|s| {
        if s == "best" {
            Select::Best
        } else {
            Select::Last
        }
    });
    let ens = Ensemble::load(&args.run, select, &device)?;
    let results = predict_images(&ens, &args.images);
    let mut rows = vec!["path,probability,fold_probabilities".to_string()];
    let mut failed = 0;
    println!("{:>11}  {:<40}  image", "probability", "per fold");
    for r in &results {
        match r {
            Ok(p) => {
                let folds: Vec<String> = p
                    .fold_probabilities
                    .iter()
                    .map(|v| format!("{v:.4}"))
                    .collect();
                println!(
                    "{:>11.4}  {:<40}  {}",
                    p.probability,
                    folds.join(" "),
                    p.path.display()
                );
                rows.push(format!(
                    "{},{:.6},{}",
                    p.path.display(),
                    p.probability,
                    folds.join(" ")
                ));
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}", super::printable(&e.to_string()));
            }
        }
    }
    if let Some(path) = &args.csv {
        mammo_image::write_atomic(path, (rows.join("\n") + "\n").as_bytes())?;
    }
    if failed > 0 {
        eprintln!("{failed} of {} images failed", results.len());
        return Ok(Outcome::PartialFailure);
    }
    Ok(Outcome::Ok)
}
