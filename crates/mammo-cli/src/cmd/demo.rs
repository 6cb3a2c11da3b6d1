//! `mammo demo`: the built-in demo on phantom data, every stage that exists so far.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use mammo_phantom::{Conspicuity, PhantomConfig, SizePreset};
use mammo_preprocess::{BatchOptions, OutputSize, PipelineConfig, run_batch};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder (data/ holds the phantom set, processed/ the PNGs and manifests).
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Patients in the phantom set.
    #[arg(long, default_value_t = 60)]
    pub patients: usize,
    /// Seed of the phantom set.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
}

pub fn run(a: Args) -> Result<Outcome> {
    let progress = std::io::stderr().is_terminal();
    let data = a.out.join("data");
    eprintln!("[1/2] phantom screening set -> {}", data.display());
    let summary = mammo_phantom::generate(&PhantomConfig {
        out: data.clone(),
        patients: a.patients,
        seed: a.seed,
        // Enough positives to see every stage work on a small set.
        prevalence: 0.25,
        size: SizePreset::Small,
        conspicuity: Conspicuity::High,
        jobs: a.jobs,
        progress,
    })?;
    eprintln!("      {} images, {} with cancer, {} lesion boxes", summary.images, summary.cancer_images, summary.lesions);

    let mut failed = 0;
    for (stage, crop, voi) in [("original", false, "none"), ("processed", true, "first")] {
        let out = a.out.join(stage);
        eprintln!("[2/2] preprocess ({stage}: crop {}, VOI {voi}) -> {}", if crop { "on" } else { "off" }, out.display());
        let cfg = PipelineConfig {
            sizes: vec![OutputSize { height: 256, width: 256 }, OutputSize { height: 512, width: 512 }],
            crop,
            voi: voi.parse().map_err(anyhow::Error::msg)?,
            flip_to: if crop { mammo_preprocess::FlipTo::Left } else { mammo_preprocess::FlipTo::None },
            ..PipelineConfig::default()
        };
        let report = run_batch(
            &BatchOptions { csv: summary.train_csv.clone(), images: summary.images_dir.clone(), out, jobs: a.jobs, progress },
            &cfg,
        )?;
        eprintln!("      {} images in {:.1}s, {} failed; manifests: {}", report.total, report.seconds, report.failed,
            report.manifests.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
        failed += report.failed;
    }
    eprintln!("done: {}", a.out.display());
    Ok(if failed > 0 { Outcome::PartialFailure } else { Outcome::Ok })
}
