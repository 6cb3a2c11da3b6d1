use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use mammo_phantom::{
    Conspicuity, DensityMix, PhantomConfig, RSNA_PREVALENCE, SizePreset, generate,
};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder: train.csv, train_images/<patient_id>/<image_id>.dcm, lesions.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of patients (each has L/R x CC/MLO, occasionally an extra view).
    #[arg(long, default_value_t = 60, value_parser = crate::cmd::at_least::<1>)]
    pub patients: usize,
    /// Seed; the same seed and settings give byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Probability that a patient has cancer (in one breast). Default: RSNA's 486/11913.
    #[arg(long, default_value_t = RSNA_PREVALENCE, value_parser = crate::cmd::fraction)]
    pub prevalence: f64,
    /// Image size: `full` (real machine matrices, up to 2560x3328), `small` (about a fifth,
    /// quick on a laptop) or WIDTHxHEIGHT for every image.
    #[arg(long, default_value = "small")]
    pub size: SizePreset,
    /// How visible lesions are: low, medium, high, or obvious (larger masses for from-scratch
    /// demos on a CPU).
    #[arg(long, default_value = "medium")]
    pub conspicuity: Conspicuity,
    /// Breast density categories patients are drawn from: `rsna` (A 10 %, B 42 %, C 39 %,
    /// D 9 %), letters each equally likely (`AB`: fatty breasts, where masses show), or four
    /// weights `a,b,c,d`. Cancer and normal patients share the mix.
    #[arg(long, default_value = "rsna")]
    pub density: DensityMix,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: Args) -> Result<Outcome> {
    let cfg = PhantomConfig {
        out: a.out,
        patients: a.patients,
        seed: a.seed,
        prevalence: a.prevalence,
        size: a.size,
        conspicuity: a.conspicuity,
        density: a.density,
        jobs: a.jobs,
        progress: !a.quiet && std::io::stderr().is_terminal(),
    };
    cfg.validate().map_err(super::usage("phantom settings"))?;
    let s = generate(&cfg)?;
    eprintln!(
        "wrote {} images of {} patients ({} cancer images, {} cancer patients, {} lesion rows) to \
         {}",
        s.images,
        s.patients,
        s.cancer_images,
        s.cancer_patients,
        s.lesions,
        s.out.display()
    );
    Ok(Outcome::Ok)
}
