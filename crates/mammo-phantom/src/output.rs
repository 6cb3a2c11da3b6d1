//! The dataset writer: plans, renders and writes every image in parallel, then the CSVs.
//!
//! Output is written so that an interrupted run loses no finished work: every file goes to a
//! temporary sibling and is renamed into place, and the CSVs are written last. A rerun with
//! the same output-determining configuration (same generator version, patients, seed,
//! prevalence, size and conspicuity, as recorded in phantom.json) keeps the image files that
//! already exist, since they can only be complete and identical.

use std::fs;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::dicom_write::{write_atomic, write_file};
use crate::machines::machines;
use crate::render::render;
use crate::study::{ImagePlan, plan_dataset};
use crate::{PhantomConfig, PhantomError};

/// Images and patients per machine.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MachineCount {
    /// machine_id.
    pub machine_id: u32,
    /// site_id.
    pub site_id: u32,
    /// Patients imaged on it.
    pub patients: usize,
    /// Images.
    pub images: usize,
    /// Images with cancer = 1.
    pub cancer_images: usize,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PhantomSummary {
    /// Patients.
    pub patients: usize,
    /// Images (rows of train.csv).
    pub images: usize,
    /// Images with cancer = 1.
    pub cancer_images: usize,
    /// Patients with at least one cancer image.
    pub cancer_patients: usize,
    /// Rows of lesions.csv.
    pub lesions: usize,
    /// Per machine, in machine-table order (machines without images included).
    pub per_machine: Vec<MachineCount>,
    /// Image files kept from an earlier identical run instead of being rewritten.
    pub reused_images: usize,
    /// The output folder.
    pub out: PathBuf,
    /// OUT/train.csv.
    pub train_csv: PathBuf,
    /// OUT/lesions.csv.
    pub lesions_csv: PathBuf,
    /// OUT/train_images.
    pub images_dir: PathBuf,
    /// OUT/phantom.json (resolved configuration, generator version, machine table).
    pub config_json: PathBuf,
}

/// The 14 columns of RSNA's train.csv, in order.
pub const TRAIN_COLUMNS: [&str; 14] = [
    "site_id",
    "patient_id",
    "image_id",
    "laterality",
    "view",
    "age",
    "cancer",
    "biopsy",
    "invasive",
    "BIRADS",
    "implant",
    "density",
    "machine_id",
    "difficult_negative_case",
];

/// Columns of lesions.csv. Boxes are in pixels of the stored image (column x, row y, origin
/// at the top-left pixel), `[x0, x1) x [y0, y1)`; contrast is the lesion's peak added
/// attenuation in units where the full compressed thickness of fat is 1.
pub const LESION_COLUMNS: [&str; 10] = [
    "image_id",
    "patient_id",
    "laterality",
    "view",
    "lesion_type",
    "x0",
    "y0",
    "x1",
    "y1",
    "contrast",
];

/// The generator identity recorded in phantom.json; a change invalidates resumption. The
/// revision counts changes to what a seed renders (2: masses displace the tissue under them).
pub const GENERATOR: &str = concat!("mammo-phantom ", env!("CARGO_PKG_VERSION"), " rev 2");

#[derive(Serialize)]
struct Manifest<'a> {
    generator: &'static str,
    config: &'a PhantomConfig,
    machines: &'static [crate::machines::Machine],
}

/// Path of an image file under `out`.
pub fn image_path(out: &Path, plan: &ImagePlan) -> PathBuf {
    out.join("train_images")
        .join(plan.patient_id.to_string())
        .join(format!("{}.dcm", plan.image_id))
}

/// Generates the whole dataset (see the crate docs).
pub fn generate(cfg: &PhantomConfig) -> Result<PhantomSummary, PhantomError> {
    cfg.validate()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.jobs)
        .build()
        .map_err(|e| {
            PhantomError::Config(format!("cannot start {} worker threads: {e}", cfg.jobs))
        })?;
    pool.install(|| generate_in_pool(cfg))
}

fn output_key(json: &str) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(json).ok()?;
    let config = v.get_mut("config")?.as_object_mut()?;
    for volatile in ["out", "jobs", "progress"] {
        config.remove(volatile);
    }
    v.as_object_mut()?.remove("machines");
    Some(v)
}

fn generate_in_pool(cfg: &PhantomConfig) -> Result<PhantomSummary, PhantomError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| PhantomError::Io { path, source }
    };
    let images_dir = cfg.out.join("train_images");
    fs::create_dir_all(&images_dir).map_err(io(&images_dir))?;

    let config_json = cfg.out.join("phantom.json");
    let manifest = Manifest {
        generator: GENERATOR,
        config: cfg,
        machines: machines(),
    };
    let json = serde_json::to_string_pretty(&manifest).expect("the manifest serialises") + "\n";
    let resume = fs::read_to_string(&config_json)
        .ok()
        .and_then(|old| output_key(&old))
        .is_some_and(|old| Some(old) == output_key(&json));
    write_atomic(&config_json, json.as_bytes())?;

    let plans = plan_dataset(cfg);
    let bar = if cfg.progress {
        let bar = ProgressBar::new(plans.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bar:40} {pos}/{len} images  {elapsed} (eta {eta})",
            )
            .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let reused: Vec<bool> = plans
        .par_iter()
        .map(|plan| {
            let path = image_path(&cfg.out, plan);
            let result = if resume && path.is_file() {
                Ok(true)
            } else {
                let dir = path.parent().expect("image paths have a folder");
                fs::create_dir_all(dir)
                    .map_err(io(dir))
                    .and_then(|()| write_file(&path, plan, &render(plan)))
                    .map(|()| false)
            };
            bar.inc(1);
            result
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();

    let train_csv = cfg.out.join("train.csv");
    write_atomic(
        &train_csv,
        &train_rows(&plans).map_err(|source| PhantomError::Csv {
            path: train_csv.clone(),
            source,
        })?,
    )?;
    let lesions_csv = cfg.out.join("lesions.csv");
    write_atomic(
        &lesions_csv,
        &lesion_rows(&plans).map_err(|source| PhantomError::Csv {
            path: lesions_csv.clone(),
            source,
        })?,
    )?;

    let mut per_machine: Vec<MachineCount> = machines()
        .iter()
        .map(|m| MachineCount {
            machine_id: m.machine_id,
            site_id: m.site_id,
            patients: 0,
            images: 0,
            cancer_images: 0,
        })
        .collect();
    let mut last_patient = None;
    let mut cancer_patients = 0;
    let mut patient_has_cancer = false;
    for plan in &plans {
        let count = per_machine
            .iter_mut()
            .find(|c| c.machine_id == plan.machine.machine_id)
            .expect("known machine");
        if last_patient != Some(plan.patient_id) {
            last_patient = Some(plan.patient_id);
            count.patients += 1;
            patient_has_cancer = false;
        }
        count.images += 1;
        if plan.cancer {
            count.cancer_images += 1;
            if !patient_has_cancer {
                cancer_patients += 1;
                patient_has_cancer = true;
            }
        }
    }
    Ok(PhantomSummary {
        patients: cfg.patients,
        images: plans.len(),
        cancer_images: plans.iter().filter(|p| p.cancer).count(),
        cancer_patients,
        lesions: plans.iter().map(|p| p.lesions.len()).sum(),
        per_machine,
        reused_images: reused.iter().filter(|&&r| r).count(),
        out: cfg.out.clone(),
        train_csv,
        lesions_csv,
        images_dir,
        config_json,
    })
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// train.csv in RSNA's formatting: `age` and `BIRADS` as floats ("61.0", "0.0") or empty,
/// `difficult_negative_case` as Python booleans.
fn train_rows(plans: &[ImagePlan]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(TRAIN_COLUMNS)?;
    for p in plans {
        w.write_record([
            p.site_id.to_string().as_str(),
            &p.patient_id.to_string(),
            &p.image_id.to_string(),
            p.laterality.as_str(),
            p.view.as_str(),
            &p.age.map_or(String::new(), |a| format!("{a}.0")),
            flag(p.cancer),
            flag(p.biopsy),
            flag(p.invasive),
            &p.birads.map_or(String::new(), |b| format!("{b}.0")),
            flag(p.implant),
            if p.density_reported {
                p.density.as_str()
            } else {
                ""
            },
            &p.machine.machine_id.to_string(),
            if p.difficult_negative {
                "True"
            } else {
                "False"
            },
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

fn lesion_rows(plans: &[ImagePlan]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(LESION_COLUMNS)?;
    for p in plans {
        for l in &p.lesions {
            let b = l.bbox();
            w.write_record([
                p.image_id.to_string().as_str(),
                &p.patient_id.to_string(),
                p.laterality.as_str(),
                p.view.as_str(),
                l.kind.as_str(),
                &b.x0.to_string(),
                &b.y0.to_string(),
                &b.x1.to_string(),
                &b.y1.to_string(),
                &format!("{:.4}", l.contrast),
            ])?;
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Lesion boxes of a `lesions.csv` by image id: `[x0, y0, x1, y1]` in stored-image pixels.
/// Errors name the file and the row.
pub fn read_lesion_boxes(
    path: &std::path::Path,
) -> Result<std::collections::HashMap<String, Vec<[f64; 4]>>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut r = csv::Reader::from_path(path).map_err(|e| fail(&e))?;
    let headers = r.headers().map_err(|e| fail(&e))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| fail(&format!("no column {name}")))
    };
    let (id, x0, y0, x1, y1) = (
        col("image_id")?,
        col("x0")?,
        col("y0")?,
        col("x1")?,
        col("y1")?,
    );
    let mut out: std::collections::HashMap<String, Vec<[f64; 4]>> =
        std::collections::HashMap::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| fail(&e))?;
        let num = |c: usize| {
            rec.get(c)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| {
                    fail(&format!(
                        "row {}: {} is not a number",
                        i + 2,
                        headers.get(c).unwrap_or("?")
                    ))
                })
        };
        out.entry(rec[id].to_string())
            .or_default()
            .push([num(x0)?, num(y0)?, num(x1)?, num(y1)?]);
    }
    Ok(out)
}
