use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use mammo_dicom::VoiChoice;
use mammo_image::Filter;
use mammo_preprocess::{
    BatchOptions, DatasetBatchOptions, DatasetKind, FlipTo, OutputSize, PipelineConfig, run_batch,
    run_dataset_batch,
};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// RSNA-style CSV (columns patient_id, image_id, laterality, view, cancer, ...); `--images`
    /// is then the folder holding `<patient_id>/<image_id>.dcm`.
    #[arg(long, required_unless_present = "dataset", conflicts_with = "dataset")]
    pub csv: Option<PathBuf>,
    /// Read a public dataset from its documented layout instead of a CSV: rsna, cbis-ddsm,
    /// vindr, cmmd or inbreast; `--images` is then the dataset's root folder. Its lesion boxes
    /// (where it has them) are written to OUT/lesions.csv for `mammo explain --truth`.
    #[arg(long, value_parser = parse_dataset)]
    pub dataset: Option<DatasetKind>,
    /// Folder holding `<patient_id>/<image_id>.dcm` (with --csv) or the dataset's root (with
    /// --dataset).
    #[arg(long)]
    pub images: PathBuf,
    /// Output folder (resumes when it holds an earlier run with the same settings).
    #[arg(long)]
    pub out: PathBuf,
    /// Square output size in pixels; repeat for several (e.g. --size 512 --size 256).
    #[arg(long = "size", value_parser = crate::cmd::pixels)]
    pub sizes: Vec<u32>,
    /// Output height (with --width) for a non-square size.
    #[arg(long, requires = "width", value_parser = crate::cmd::pixels)]
    pub height: Option<u32>,
    /// Output width (with --height).
    #[arg(long, requires = "height", value_parser = crate::cmd::pixels)]
    pub width: Option<u32>,
    /// Crop to the breast (removes background, labels and markers).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub crop: String,
    /// VOI transform: `first` window of each file, `none` (min-max), or an index.
    #[arg(long, default_value = "first")]
    pub voi: VoiChoice,
    /// PNG bit depth.
    #[arg(long, default_value_t = 8, value_parser = crate::cmd::parse_bits)]
    pub bits: u32,
    /// Mirror right breasts so every chest wall is on the left (`left`), or not (`none`).
    #[arg(long, default_value = "none")]
    pub flip_to: FlipTo,
    /// Resampling filter: area (exact area average) or lanczos3.
    #[arg(long, default_value = "area")]
    pub filter: Filter,
    /// Stretch to the size instead of keeping the aspect ratio and padding.
    #[arg(long)]
    pub stretch: bool,
    /// Always decode at full resolution (disables the reduced JPEG 2000 decode).
    #[arg(long)]
    pub full_decode: bool,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl Args {
    pub fn pipeline(&self) -> Result<PipelineConfig> {
        let mut sizes: Vec<OutputSize> =
            self.sizes.iter().map(|&s| OutputSize::square(s)).collect();
        if let (Some(h), Some(w)) = (self.height, self.width) {
            sizes.push(OutputSize {
                height: h,
                width: w,
            });
        }
        if sizes.is_empty() {
            return Err(super::UsageError(
                "give at least one --size (or --height with --width)".into(),
            )
            .into());
        }
        sizes.dedup();
        Ok(PipelineConfig {
            sizes,
            crop: self.crop == "on",
            voi: self.voi,
            bits: self.bits,
            flip_to: self.flip_to,
            filter: self.filter,
            keep_aspect: !self.stretch,
            reduced_decode: !self.full_decode,
            ..PipelineConfig::default()
        })
    }
}

fn parse_dataset(s: &str) -> Result<DatasetKind, String> {
    s.parse()
}

pub fn run(a: Args) -> Result<Outcome> {
    let cfg = a.pipeline()?;
    cfg.validate()
        .map_err(|e| super::UsageError(format!("preprocessing settings: {e}")))?;
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let report = match (a.dataset, &a.csv) {
        (Some(kind), _) => run_dataset_batch(
            &DatasetBatchOptions {
                kind,
                root: a.images.clone(),
                out: a.out.clone(),
                jobs: a.jobs,
                progress,
            },
            &cfg,
        )?,
        (None, Some(csv)) => run_batch(
            &BatchOptions {
                csv: csv.clone(),
                images: a.images.clone(),
                out: a.out.clone(),
                jobs: a.jobs,
                progress,
            },
            &cfg,
        )?,
        (None, None) => unreachable!("clap requires --csv without --dataset"),
    };
    for w in report.warnings.iter().take(20) {
        eprintln!("warning: {}", super::printable(w));
    }
    if report.warnings.len() > 20 {
        eprintln!(
            "warning: ... and {} more (all in {})",
            report.warnings.len() - 20,
            a.out.join("summary.json").display()
        );
    }
    if report.refreshed > 0 {
        eprintln!(
            "{} finished images had changed train.csv rows: manifest rows rewritten, PNGs kept",
            report.refreshed
        );
    }
    if let Some(l) = &report.lesions_csv {
        eprintln!("{} lesion boxes in {}", report.lesion_boxes, l.display());
    }
    eprintln!(
        "preprocessed {} images in {:.1}s ({} new, {} already done, {} failed); manifests: {}",
        report.total,
        report.seconds,
        report.processed,
        report.skipped_done,
        report.failed,
        report
            .manifests
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if report.failed > 0 {
        eprintln!(
            "failures ({}), also in {}:",
            report.failed,
            a.out.join("failures.csv").display()
        );
        for f in report.failures.iter().take(20) {
            eprintln!("  {}: {}", f.file, super::printable(&f.reason));
        }
        if report.failed > 20 {
            eprintln!("  ... and {} more", report.failed - 20);
        }
        return Ok(Outcome::PartialFailure);
    }
    Ok(Outcome::Ok)
}
