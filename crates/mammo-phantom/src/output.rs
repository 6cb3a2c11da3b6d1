//! The dataset writer: plans, renders and writes every image in parallel, then the CSVs.
//!
//! Output is written so that an interrupted run loses no finished work: every file goes to a
//! temporary sibling and is renamed into place, and the CSVs are written last. A rerun with
//! the same output-determining configuration (same generator version, patients, seed,
//! prevalence, size and conspicuity, as recorded in phantom.json) keeps the image files that
//! already exist, since they can only be complete and identical.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::dicom_write::{write_atomic, write_file};
use crate::machines::machines;
use crate::render::render;
use crate::study::{DatasetPlanner, ImagePlan};
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

/// Columns of lesions.csv ([`mammo_dataset::PHANTOM_LESION_COLUMNS`]). Boxes are in pixels
/// of the stored image (column x, row y, origin at the top-left pixel), `[x0, x1) x [y0, y1)`;
/// contrast is the lesion's peak added attenuation in units where the full compressed
/// thickness of fat is 1.
pub const LESION_COLUMNS: [&str; 10] = mammo_dataset::PHANTOM_LESION_COLUMNS;

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
    // One writer per folder; what a killed writer left half-written goes first.
    let _lock = mammo_io::OutputLock::acquire(&cfg.out, "mammo phantom")?;
    mammo_io::sweep_temp_files(&cfg.out).map_err(io(&cfg.out))?;
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

    // Planned in full one run of patients at a time (the planner keeps ids only), rendered,
    // and the CSV rows streamed: memory does not grow with the set (docs/scale.md).
    let planner = DatasetPlanner::new(cfg);
    let bar = mammo_io::progress_bar(cfg.progress, planner.images() as u64, "phantom");
    let train_csv = cfg.out.join("train.csv");
    let lesions_csv = cfg.out.join("lesions.csv");
    let csv_writer = |path: &Path| {
        mammo_io::AtomicFile::create(path)
            .map(csv::Writer::from_writer)
            .map_err(io(path))
    };
    let (mut train, mut lesions) = (csv_writer(&train_csv)?, csv_writer(&lesions_csv)?);
    let csv_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PhantomError::Csv { path, source }
    };
    train
        .write_record(TRAIN_COLUMNS)
        .map_err(csv_err(&train_csv))?;
    lesions
        .write_record(LESION_COLUMNS)
        .map_err(csv_err(&lesions_csv))?;

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
    let (mut cancer_patients, mut patient_has_cancer) = (0, false);
    let (mut images, mut cancer_images, mut lesion_count, mut reused_images) = (0, 0, 0, 0);
    for patients in planner.patients().chunks(PATIENT_CHUNK) {
        let plans = planner.plan(cfg, patients);
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
        reused_images += reused.iter().filter(|&&r| r).count();
        for plan in &plans {
            train_row(&mut train, plan).map_err(csv_err(&train_csv))?;
            lesion_rows(&mut lesions, plan).map_err(csv_err(&lesions_csv))?;
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
            images += 1;
            lesion_count += plan.lesions.len();
            if plan.cancer {
                count.cancer_images += 1;
                cancer_images += 1;
                if !patient_has_cancer {
                    cancer_patients += 1;
                    patient_has_cancer = true;
                }
            }
        }
    }
    bar.finish_and_clear();
    // The CSVs go into place last, after every image.
    for (w, path) in [(train, &train_csv), (lesions, &lesions_csv)] {
        mammo_io::commit_csv(w).map_err(io(path))?;
    }
    Ok(PhantomSummary {
        patients: cfg.patients,
        images,
        cancer_images,
        cancer_patients,
        lesions: lesion_count,
        per_machine,
        reused_images,
        out: cfg.out.clone(),
        train_csv,
        lesions_csv,
        images_dir,
        config_json,
    })
}

/// Patients planned, rendered and written at once.
const PATIENT_CHUNK: usize = 256;

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// One train.csv row in RSNA's formatting: `age` and `BIRADS` as floats ("61.0", "0.0") or
/// empty, `difficult_negative_case` as Python booleans.
fn train_row<W: std::io::Write>(w: &mut csv::Writer<W>, p: &ImagePlan) -> Result<(), csv::Error> {
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
    ])
}

/// The lesions.csv rows of one image.
fn lesion_rows<W: std::io::Write>(w: &mut csv::Writer<W>, p: &ImagePlan) -> Result<(), csv::Error> {
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
    Ok(())
}
