use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Result;
use mammo_models::DeviceSpec;
use mammo_preprocess::RsnaTestSet;
use mammo_train::submission::breasts;
use mammo_train::{
    Ensemble, Select, Submission, predict_images, predict_rsna_test, predictions_csv,
};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folder written by `mammo train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Images: PNGs from `mammo preprocess` at the run's size, or DICOM files (processed
    /// with the training set's saved preprocessing settings).
    #[arg(required_unless_present = "rsna_test", conflicts_with = "rsna_test")]
    pub images: Vec<PathBuf>,
    /// An RSNA Screening Mammography test set instead of IMAGES: DIR/test.csv and
    /// DIR/test_images/<patient_id>/<image_id>.dcm. Writes Kaggle's submission
    /// (`prediction_id,cancer`, one row per breast, sorted by prediction_id =
    /// patient_id_laterality): a breast's cancer probability is the mean of its images' (the
    /// training metric's per-breast aggregation). test.csv is checked first (columns, ids,
    /// prediction_id). An image that cannot be read is reported at the end and left out of
    /// its breast's mean (exit status 3); a breast with no readable image is an error naming
    /// it, and then no submission is written (exit status 3).
    #[arg(long, value_name = "DIR")]
    pub rsna_test: Option<PathBuf>,
    /// Where --rsna-test writes the submission, atomically (replacing the file only once it
    /// is complete). Default: submission.csv in the current folder, where a Kaggle notebook
    /// (working folder /kaggle/working) must leave it.
    #[arg(
        long,
        value_name = "FILE",
        requires = "rsna_test",
        conflicts_with = "images"
    )]
    pub submission: Option<PathBuf>,
    /// Weights of each fold: `last` or `best` (default: the run's choice).
    #[arg(long, value_parser = super::select_parser())]
    pub select: Option<Select>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Also write each image's prediction as CSV here (path, probability, per fold).
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<Outcome> {
    // A test set that cannot be read fails before any model is loaded.
    let test_set = match &args.rsna_test {
        Some(dir) => {
            let set = RsnaTestSet::open(dir)?;
            for w in &set.warnings {
                eprintln!("warning: {}", super::printable(w));
            }
            Some(set)
        }
        None => None,
    };
    let device = super::open_device(args.device, false)?.device;
    let select = args.select;
    let ens = Ensemble::load(&args.run, select, &device)?;
    match test_set {
        Some(set) => {
            let submission = args
                .submission
                .clone()
                .unwrap_or_else(|| PathBuf::from("submission.csv"));
            rsna_test(&ens, &set, &submission, args.csv.as_deref())
        }
        None => images(&ens, &args.images, args.csv.as_deref()),
    }
}

fn images(ens: &Ensemble, images: &[PathBuf], csv: Option<&Path>) -> Result<Outcome> {
    let results = predict_images(ens, images);
    let mut failed = 0;
    println!("{:>11}  {:<40}  image", "probability", "per fold");
    for r in &results {
        match r {
            Ok(p) => println!(
                "{:>11.4}  {:<40}  {}",
                p.probability,
                p.folds_text(),
                p.path.display()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("error: {}", super::printable(&e.to_string()));
            }
        }
    }
    if let Some(path) = csv {
        let text = predictions_csv(results.iter().filter_map(|r| r.as_ref().ok()));
        mammo_image::write_atomic(path, text.as_bytes())?;
    }
    if failed > 0 {
        eprintln!("{failed} of {} images failed", results.len());
        return Ok(Outcome::PartialFailure);
    }
    Ok(Outcome::Ok)
}

fn rsna_test(
    ens: &Ensemble,
    set: &RsnaTestSet,
    submission: &Path,
    csv: Option<&Path>,
) -> Result<Outcome> {
    let images = predict_rsna_test(ens, set, std::io::stderr().is_terminal())?;
    if let Some(path) = csv {
        let text = predictions_csv(images.iter().filter_map(|i| i.prediction.as_ref().ok()));
        mammo_image::write_atomic(path, text.as_bytes())?;
    }
    let mut failed = 0;
    for i in &images {
        if let Err(e) = &i.prediction {
            failed += 1;
            eprintln!("error: {}", super::printable(&e.to_string()));
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} images failed", images.len());
    }
    let sub = Submission::from_predictions(&images);
    if !sub.unreadable.is_empty() {
        eprintln!(
            "error: {} without a readable image: {}; {} not written",
            breasts(sub.unreadable.len()),
            super::printable(&sub.unreadable.join(", ")),
            submission.display()
        );
        return Ok(Outcome::PartialFailure);
    }
    sub.write(submission)?;
    println!(
        "{}: {} from {} images",
        submission.display(),
        breasts(sub.rows.len()),
        images.len() - failed
    );
    Ok(if failed > 0 {
        Outcome::PartialFailure
    } else {
        Outcome::Ok
    })
}
