use mammo_models::DeviceSpec;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use mammo_explain::batch::{
    BatchError, BatchOptions, BoxRule, Explained, Layers, Loaded, Target, explain_batch,
};
use mammo_explain::render::{colour, draw_box, npy_bytes, overlay, write_rgb_png};
use mammo_explain::{Explainer, Method};
use mammo_train::data::model_input;
use mammo_train::{Run, Select, load_input};
use serde::Serialize;

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folder written by `mammo train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Explain with this fold's model only. Without it every fold's model explains each
    /// image and the maps are their mean (rescaled to 0..1; the probability is the folds'
    /// mean): the cross-validated ensemble, which no single fold's quirks dominate.
    #[arg(long)]
    pub fold: Option<usize>,
    /// The folds' `last` or `best` weights.
    #[arg(long, default_value = "last", value_parser = super::select_parser())]
    pub select: Select,
    /// Images: PNGs at the run's size or DICOM files.
    pub images: Vec<PathBuf>,
    /// Explain the rows of this manifest instead (needed for --truth).
    #[arg(long, conflicts_with = "images")]
    pub manifest: Option<PathBuf>,
    /// With --manifest: only rows labelled 1 (the paper explains positives).
    #[arg(long)]
    pub positives_only: bool,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Method(s), repeatable: cam, gradcam, gradcam++, layercam, hirescam.
    #[arg(long = "method", default_value = "gradcam")]
    pub methods: Vec<Method>,
    /// Target feature layer (default: the last stage, e.g. layer4, conv_head, norm).
    #[arg(long)]
    pub layer: Option<String>,
    /// `centered` (the paper's fixed-size box at the peak) or `threshold` (largest region
    /// above --threshold x max).
    #[arg(long = "box", default_value = "centered", value_parser = ["centered", "threshold"])]
    pub box_kind: String,
    /// Side of the centered box in pixels (default: a fifth of the image width).
    #[arg(long, value_parser = crate::cmd::at_least::<1>)]
    pub box_size: Option<usize>,
    /// Fraction of the maximum for --box threshold.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Ground-truth lesion boxes (`lesions.csv` of `mammo phantom`: image_id, x0, y0, x1, y1
    /// in DICOM pixels), mapped into each PNG through the manifest; adds localisation scores.
    #[arg(long, requires = "manifest")]
    pub truth: Option<PathBuf>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    image: String,
    label: String,
    probability: f64,
    method: String,
    layer: String,
    peak_x: usize,
    peak_y: usize,
    box_x0: f64,
    box_y0: f64,
    box_x1: f64,
    box_y1: f64,
    lesions: usize,
    pointing_hit: Option<bool>,
    iou: Option<f64>,
}

pub fn run(args: Args) -> Result<Outcome> {
    let run = Run::open(&args.run)?;
    let device = super::open_device(args.device, args.quiet)?.device;
    let select = args.select;
    let folds: Vec<usize> = match args.fold {
        Some(k) if k >= run.config.folds => {
            return Err(super::UsageError(format!(
                "--fold {k}: this run has folds 0..{}",
                run.config.folds
            ))
            .into());
        }
        Some(k) => vec![k],
        None => (0..run.config.folds).collect(),
    };
    let mut weights = Vec::new();
    let mut explainers = Vec::new();
    for &k in &folds {
        let path = run.weights_path(k, select);
        if !path.exists() {
            bail!(
                "{}: no such weights (fold {k} of this run is not trained; train it, or pick a \
                 trained one with --fold)",
                path.display()
            );
        }
        let model = run.load_fold_model(k, select, &device)?;
        explainers.push(Explainer::new(model, run.model.clone(), &device));
        weights.push(path);
    }
    let layer = explainers[0]
        .layer_index(args.layer.as_deref())
        .map_err(super::usage("--layer"))?;
    let layer_name = explainers[0].feature_layers()[layer].clone();
    let [h, w] = run.info.input_size;

    let truth = args
        .truth
        .as_deref()
        .map(mammo_dataset::lesion_boxes_by_image)
        .transpose()?;
    let targets: Vec<Target> = match &args.manifest {
        Some(m) => {
            let base = m.parent().unwrap_or(Path::new("."));
            mammo_dataset::read_manifest(m)?
                .iter()
                .filter(|r| r.is_ok() && (!args.positives_only || r.is_cancer()))
                .map(|r| Target::from_row(r, base, truth.as_ref()))
                .collect()
        }
        None => {
            if args.images.is_empty() {
                return Err(
                    super::UsageError("give images to explain, or --manifest".into()).into(),
                );
            }
            args.images.iter().map(|p| Target::file(p)).collect()
        }
    };
    std::fs::create_dir_all(&args.out)?;
    let _lock = mammo_image::OutputLock::acquire(&args.out, "mammo explain")?;
    mammo_image::sweep_temp_files(&args.out)?;

    let progress = !args.quiet && std::io::stderr().is_terminal();
    let pb = mammo_io::progress_bar(progress, targets.len() as u64, "explain");
    let box_size = args.box_size.unwrap_or((w / 5).max(1));
    let opts = BatchOptions {
        methods: args.methods.clone(),
        layers: Layers::One(layer),
        boxes: if args.box_kind == "threshold" {
            BoxRule::Threshold {
                fraction: args.threshold,
            }
        } else {
            BoxRule::Centered { size: box_size }
        },
        size: [h, w],
    };
    let load = |t: &Target| {
        pb.inc(1);
        let pixels =
            load_input(&run, &t.path).inspect_err(|e| pb.suspend(|| eprintln!("error: {e}")))?;
        let input = model_input(&pixels, h, w, &run.model);
        Ok::<_, mammo_train::TrainError>(Loaded { pixels, input })
    };
    let mut rows = Vec::new();
    let write = |t: &Target, e: Explained| -> Result<()> {
        for m in &e.maps {
            let x = &m.explanation;
            let stem = format!("{}_{}", t.name, x.method.name().replace('+', "p"));
            let mut over = overlay(&e.pixels, &x.heat, w, h, 0.4);
            for l in &t.lesions {
                draw_box(&mut over, l, [255, 40, 40], 1);
            }
            draw_box(&mut over, &m.bbox, [40, 255, 40], 1);
            write_rgb_png(&args.out.join(format!("{stem}_overlay.png")), &over)?;
            write_rgb_png(
                &args.out.join(format!("{stem}_heat.png")),
                &colour(&x.heat, w, h),
            )?;
            mammo_image::write_atomic(
                &args.out.join(format!("{stem}_heat.npy")),
                &npy_bytes(&x.heat, h, w),
            )?;
            rows.push(Row {
                image: t.path.display().to_string(),
                label: mammo_dataset::label_text(t.label).into(),
                probability: e.probability,
                method: x.method.to_string(),
                layer: layer_name.clone(),
                peak_x: x.peak.0,
                peak_y: x.peak.1,
                box_x0: m.bbox.x0,
                box_y0: m.bbox.y0,
                box_x1: m.bbox.x1,
                box_y1: m.bbox.y1,
                lesions: t.lesions.len(),
                pointing_hit: m.localisation.map(|l| l.pointing_hit),
                iou: m.localisation.map(|l| l.iou),
            });
        }
        Ok(())
    };
    let report = explain_batch(&explainers, &targets, &opts, load, write).map_err(|e| match e {
        BatchError::Explain(e) => e.into(),
        BatchError::Output(e) => e,
    })?;
    pb.finish_and_clear();
    let summaries = report.summaries();

    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in &rows {
        csv.serialize(r)?;
    }
    mammo_image::write_atomic(&args.out.join("explanations.csv"), &csv.into_inner()?)?;
    let mut summary = serde_json::Map::new();
    for m in &args.methods {
        if let Some(s) = summaries.get(&(layer, *m)) {
            println!(
                "{:<10} {} images with lesions: pointing game {:.3}, mean IoU {:.3}, hit@IoU0.1 \
                 {:.3}, hit@IoU0.3 {:.3}",
                m.name(),
                s.images,
                s.pointing_game,
                s.mean_iou,
                s.hit_rate_iou_0_1,
                s.hit_rate_iou_0_3
            );
            summary.insert(m.name().into(), serde_json::to_value(s)?);
        }
    }
    let meta = serde_json::json!({
        "run": args.run,
        "folds": folds,
        "ensemble": folds.len() > 1,
        "weights": weights,
        "layer": layer_name,
        "box": args.box_kind,
        "box_size": box_size,
        "threshold": args.threshold,
        "localisation": summary,
    });
    mammo_image::write_atomic(
        &args.out.join("summary.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    let failures = report.failures.len();
    println!(
        "{} images explained ({} maps) into {}",
        targets.len() - failures,
        rows.len(),
        args.out.display()
    );
    if failures > 0 {
        eprintln!("{failures} of {} images failed", targets.len());
        return Ok(Outcome::PartialFailure);
    }
    Ok(Outcome::Ok)
}
