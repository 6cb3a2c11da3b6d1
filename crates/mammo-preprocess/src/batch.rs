//! The batch driver: parallel over files, resumable, failures collected.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use mammo_dataset::LesionBox;

use crate::datasets::{Dataset, DatasetKind, load_dataset};
use crate::error::{InputPathError, PreprocessError, io_err};
use crate::pipeline::{PipelineConfig, Processed, process_image};
use crate::rsna::{RsnaReader, RsnaRow, open_csv};
use mammo_dataset::{ManifestRow, Status};

/// Where to read and write, and how hard to work.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub csv: PathBuf,
    pub images: PathBuf,
    pub out: PathBuf,
    /// Worker threads; 0 = all cores.
    pub jobs: usize,
    pub progress: bool,
}

/// Where to read a dataset of a known layout ([`DatasetKind`]) and where to write.
#[derive(Debug, Clone)]
pub struct DatasetBatchOptions {
    pub kind: DatasetKind,
    /// The dataset's root (for `rsna`: the folder holding `train.csv` and `train_images/`).
    pub root: PathBuf,
    pub out: PathBuf,
    /// Worker threads; 0 = all cores.
    pub jobs: usize,
    pub progress: bool,
}

/// What a batch did.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub total: usize,
    pub processed: usize,
    pub skipped_done: usize,
    pub failed: usize,
    pub failures: Vec<Failure>,
    /// train.csv rows kept with a warning (an unknown view), naming each row.
    pub warnings: Vec<String>,
    /// Finished images whose train.csv row changed in columns that do not touch the pixels
    /// (label, age, view, ...): their manifest rows were rewritten, their PNGs kept.
    pub refreshed: usize,
    pub manifests: Vec<PathBuf>,
    /// `OUT/lesions.csv`, written by a dataset batch (boxes in stored-image pixels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lesions_csv: Option<PathBuf>,
    /// Rows of that `lesions.csv`.
    pub lesion_boxes: usize,
    pub seconds: f64,
}

/// One image that could not be processed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub file: String,
    pub reason: String,
}

/// Settings file written beside the outputs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct SavedSettings {
    tool: String,
    version: String,
    csv: String,
    images: String,
    pipeline: PipelineConfig,
}

/// The pipeline settings a batch run saved in `out/preprocess.json`, so that one more image
/// (a clinician's DICOM at `mammo predict`) can be processed exactly like the training set.
pub fn saved_pipeline(out: &Path) -> Result<PipelineConfig, PreprocessError> {
    let path = out.join("preprocess.json");
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    let saved: SavedSettings = serde_json::from_str(&text).map_err(|e| PreprocessError::Csv {
        path: path.clone(),
        cause: format!("not a mammo preprocess.json: {e}").into(),
    })?;
    Ok(saved.pipeline)
}

/// One journal line: all the manifest rows (one per size) of a finished image, and the
/// train.csv row they were made from, so that a resumed run sees what changed since.
#[derive(Debug, Serialize, Deserialize)]
struct JournalEntry {
    image_id: String,
    /// Absent in journals of older versions: such entries are redone.
    #[serde(default)]
    source: Option<RsnaRow>,
    /// The DICOM file of a dataset record (absent for train.csv rows, whose file follows
    /// from the ids): a record that moves to another file is processed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    /// The record's split (datasets only; it goes into the manifest).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    split: String,
    rows: Vec<ManifestRow>,
}

impl JournalEntry {
    /// The journal line saying that `item` is done with `rows`.
    fn line(item: &Item, rows: &[ManifestRow]) -> String {
        serde_json::to_string(&JournalEntry {
            image_id: item.row.image_id.clone(),
            source: Some(item.row.clone()),
            file: item.journal_file.clone(),
            split: item.split.clone(),
            rows: rows.to_vec(),
        })
        .expect("rows serialise")
    }
}

/// One image to process: its row (the train.csv row, or a dataset record as one), its file.
struct Item {
    row: RsnaRow,
    file: PathBuf,
    /// What the journal keys the file by: `None` for train.csv rows.
    journal_file: Option<String>,
    split: String,
}

/// What a journal entry is worth for the current train.csv row.
enum Reuse {
    /// Same row: keep the manifest rows as they are.
    AsIs(Vec<ManifestRow>),
    /// Only columns copied into the manifest changed: keep the PNGs, rewrite the rows.
    Refresh(Vec<ManifestRow>),
    /// The pixels or their path depend on what changed (or the entry is from an older
    /// version): process the image again.
    Redo,
}

fn reuse(entry: &JournalEntry, item: &Item) -> Reuse {
    let row = &item.row;
    let Some(source) = &entry.source else {
        return Reuse::Redo;
    };
    // Laterality decides the flip; the ids decide the PNG's path; the file its pixels.
    if source.patient_id != row.patient_id
        || source.image_id != row.image_id
        || source.laterality != row.laterality
        || entry.file != item.journal_file
    {
        return Reuse::Redo;
    }
    if source == row && entry.split == item.split {
        return Reuse::AsIs(entry.rows.clone());
    }
    // The columns `base_row` copies from the CSV; the rest describe the pixels. Laterality
    // is equal here, and the old row's may have been read from the DICOM.
    let new = base_row(row, &item.split);
    let rows = entry
        .rows
        .iter()
        .map(|old| {
            let new = new.clone();
            ManifestRow {
                view: new.view,
                label: new.label,
                site_id: new.site_id,
                machine_id: new.machine_id,
                age: new.age,
                density: new.density,
                biopsy: new.biopsy,
                invasive: new.invasive,
                birads: new.birads,
                implant: new.implant,
                difficult_negative_case: new.difficult_negative_case,
                split: new.split,
                ..old.clone()
            }
        })
        .collect();
    Reuse::Refresh(rows)
}

/// Runs the pipeline over every row of the CSV.
pub fn run_batch(
    opts: &BatchOptions,
    cfg: &PipelineConfig,
) -> Result<BatchReport, PreprocessError> {
    let started = std::time::Instant::now();
    cfg.validate()?;
    // Every row is checked before any work (a bad row stops the batch, naming it); only the
    // count and the warnings are kept, and the rows are read again as the batch goes.
    let mut check = RsnaReader::new(open_csv(&opts.csv)?, &opts.csv, true)?;
    let mut total = 0;
    for row in check.by_ref() {
        row?;
        total += 1;
    }
    // The duplicate check's id map goes with it.
    let warnings = std::mem::take(&mut check.warnings);
    drop(check);
    let images_root = std::fs::canonicalize(&opts.images).map_err(|e| io_err(&opts.images, e))?;
    if !images_root.is_dir() {
        return Err(io_err(&opts.images, "not a folder"));
    }
    let items = RsnaReader::new(open_csv(&opts.csv)?, &opts.csv, false)?.map(|row| {
        row.map(|row| Item {
            file: opts
                .images
                .join(&row.patient_id)
                .join(format!("{}.dcm", row.image_id)),
            row,
            journal_file: None,
            split: String::new(),
        })
    });
    let run = Run {
        opts,
        images_root: &images_root,
        items: Box::new(items),
        total,
        warnings,
        lesions: None,
        started,
    };
    run_items(run, cfg)
}

/// Reads the dataset ([`load_dataset`]) and runs the pipeline over its images, like
/// [`run_batch`] over train.csv rows (resumable, parallel, failures reported), then writes its
/// lesion boxes to `OUT/lesions.csv` (stored-image pixels, the format `mammo explain --truth`
/// reads). The dataset's warnings join the report's. For `rsna` this is [`run_batch`] with
/// `root/train.csv` and `root/train_images`, and a `root/lesions.csv` is copied to `OUT/`.
pub fn run_dataset_batch(
    opts: &DatasetBatchOptions,
    cfg: &PipelineConfig,
) -> Result<BatchReport, PreprocessError> {
    let started = std::time::Instant::now();
    cfg.validate()?;
    if opts.kind == DatasetKind::Rsna {
        let mut report = run_batch(
            &BatchOptions {
                csv: opts.root.join("train.csv"),
                images: opts.root.join("train_images"),
                out: opts.out.clone(),
                jobs: opts.jobs,
                progress: opts.progress,
            },
            cfg,
        )?;
        let src = opts.root.join("lesions.csv");
        if src.is_file() {
            let lesions = mammo_dataset::read_lesions_csv(&src)?;
            let dst = opts.out.join("lesions.csv");
            mammo_dataset::write_lesions_csv(&dst, &lesions)?;
            report.lesions_csv = Some(dst);
            report.lesion_boxes = lesions.len();
        }
        return Ok(report);
    }
    let dataset = load_dataset(opts.kind, &opts.root)?;
    run_dataset(opts, &dataset, cfg, started)
}

/// [`run_dataset_batch`] on a dataset already read (or built by hand).
pub fn run_loaded_dataset(
    opts: &DatasetBatchOptions,
    dataset: &Dataset,
    cfg: &PipelineConfig,
) -> Result<BatchReport, PreprocessError> {
    cfg.validate()?;
    run_dataset(opts, dataset, cfg, std::time::Instant::now())
}

fn run_dataset(
    opts: &DatasetBatchOptions,
    dataset: &Dataset,
    cfg: &PipelineConfig,
    started: std::time::Instant,
) -> Result<BatchReport, PreprocessError> {
    let images_root = std::fs::canonicalize(&dataset.root).map_err(|e| io_err(&dataset.root, e))?;
    let items = dataset.images.iter().map(|r| {
        Ok(Item {
            row: r.to_rsna_row(),
            file: r.dicom.clone(),
            journal_file: Some(r.dicom.display().to_string()),
            split: r.split.clone(),
        })
    });
    let batch_opts = BatchOptions {
        csv: PathBuf::from(format!("{} dataset", dataset.kind)),
        images: dataset.root.clone(),
        out: opts.out.clone(),
        jobs: opts.jobs,
        progress: opts.progress,
    };
    let run = Run {
        opts: &batch_opts,
        images_root: &images_root,
        items: Box::new(items),
        total: dataset.images.len(),
        warnings: dataset.warnings.clone(),
        lesions: Some(&dataset.lesions),
        started,
    };
    run_items(run, cfg)
}

/// One batch: the items and where they come from.
struct Run<'a> {
    opts: &'a BatchOptions,
    /// Canonical; every file must resolve inside it.
    images_root: &'a Path,
    /// Read as the batch goes, [`MANIFEST_CHUNK`] at a time.
    items: Box<dyn Iterator<Item = Result<Item, PreprocessError>> + 'a>,
    /// How many `items` will yield (the progress bar's length).
    total: usize,
    warnings: Vec<String>,
    /// Written to `OUT/lesions.csv` when given.
    lesions: Option<&'a [LesionBox]>,
    started: std::time::Instant,
}

fn run_items(run: Run<'_>, cfg: &PipelineConfig) -> Result<BatchReport, PreprocessError> {
    let Run {
        opts,
        images_root,
        items,
        total,
        warnings,
        lesions,
        started,
    } = run;
    std::fs::create_dir_all(&opts.out).map_err(|e| io_err(&opts.out, e))?;
    // One writer per folder; what killed writers left half-written goes first.
    let _lock = mammo_image::OutputLock::acquire(&opts.out, "mammo preprocess")?;
    mammo_image::sweep_temp_files(&opts.out).map_err(|e| io_err(&opts.out, e))?;
    check_settings(opts, cfg)?;
    let lesions_csv = match lesions {
        Some(l) => {
            let path = opts.out.join("lesions.csv");
            mammo_dataset::write_lesions_csv(&path, l)?;
            Some(path)
        }
        None => None,
    };

    let journal_path = opts.out.join("journal.jsonl");
    let mut journal_entries = read_journal(&journal_path);
    // A journal entry counts only when its PNGs are still there and whole.
    journal_entries.retain(|_, entry| {
        entry.rows.len() == cfg.sizes.len()
            && entry.rows.iter().all(|r| {
                let p = opts.out.join(size_dir(r)).join(&r.path);
                matches!(
                    mammo_image::png_dimensions(&p),
                    Ok(png) if png.width == r.width && png.height == r.height
                )
            })
    });
    let journal_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal_path)
        .map_err(|e| io_err(&journal_path, e))?;
    let journal = Mutex::new(journal_file);
    let bar = mammo_io::progress_bar(opts.progress, total as u64, "preprocess");
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(PreprocessError::Threads)?;

    // The items are read, processed and their manifest rows written in CSV order a chunk at
    // a time, so that memory holds one chunk, not the whole set (docs/scale.md).
    let mut manifests = Vec::new();
    let mut writers = Vec::new();
    for size in &cfg.sizes {
        let dir = opts.out.join(size.label());
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let path = dir.join("manifest.csv");
        let file = mammo_io::AtomicFile::create(&path).map_err(|e| io_err(&path, e))?;
        writers.push(csv::Writer::from_writer(file));
        manifests.push(path);
    }
    let (mut skipped, mut refreshed, mut seen) = (0, 0, 0);
    let mut items = items.peekable();
    while items.peek().is_some() {
        let chunk: Vec<Item> = items
            .by_ref()
            .take(MANIFEST_CHUNK)
            .collect::<Result<_, _>>()?;
        seen += chunk.len();
        // What each current row can take from the journal: the manifest always follows the
        // CSV. Rewritten rows go into the journal too (a later line wins), so that the next
        // run compares against the CSV as it is now.
        let mut done: Vec<Option<Vec<ManifestRow>>> = Vec::with_capacity(chunk.len());
        for item in &chunk {
            let reused = match journal_entries
                .get(&item.row.image_id)
                .map(|e| reuse(e, item))
            {
                Some(Reuse::AsIs(r)) => Some(r),
                Some(Reuse::Refresh(r)) => {
                    let line = JournalEntry::line(item, &r);
                    let mut j = journal.lock().expect("journal lock");
                    writeln!(j, "{line}").map_err(|e| io_err(&journal_path, e))?;
                    refreshed += 1;
                    Some(r)
                }
                Some(Reuse::Redo) | None => None,
            };
            done.push(reused);
        }
        let reused = done.iter().filter(|d| d.is_some()).count();
        skipped += reused;
        bar.inc(reused as u64);
        let chunk_rows: Vec<Vec<ManifestRow>> = pool.install(|| {
            chunk
                .par_iter()
                .zip(done.into_par_iter())
                .map(|(item, done)| {
                    if let Some(rows) = done {
                        return rows;
                    }
                    let rows =
                        process_or_fail(item, images_root, cfg, opts, &journal, &failures, &bar);
                    bar.inc(1);
                    rows
                })
                .collect()
        });
        for image_rows in chunk_rows {
            for ((row, w), path) in image_rows.iter().zip(&mut writers).zip(&manifests) {
                w.serialize(row).map_err(|e| io_err(path, e))?;
            }
        }
    }
    bar.finish_and_clear();
    for (w, path) in writers.into_iter().zip(&manifests) {
        mammo_io::commit_csv(w).map_err(|e| io_err(path, e))?;
    }
    let mut failures = failures.into_inner().expect("failures lock");
    failures.sort_by(|a, b| a.file.cmp(&b.file));
    mammo_io::write_csv(&opts.out.join("failures.csv"), &failures)
        .map_err(|e| io_err(&e.path, e.cause))?;
    let report = BatchReport {
        total: seen,
        processed: seen - skipped - failures.len(),
        skipped_done: skipped,
        failed: failures.len(),
        failures,
        warnings,
        refreshed,
        manifests,
        lesion_boxes: lesions.map_or(0, <[LesionBox]>::len),
        lesions_csv,
        seconds: started.elapsed().as_secs_f64(),
    };
    let summary = opts.out.join("summary.json");
    mammo_image::write_atomic(
        &summary,
        serde_json::to_string_pretty(&report)
            .expect("report serialises")
            .as_bytes(),
    )
    .map_err(|e| io_err(&summary, e))?;
    Ok(report)
}

/// Images per chunk of a batch: the manifest rows of one chunk are held in memory before they
/// are written.
const MANIFEST_CHUNK: usize = 2048;

/// Processes one image, journals its rows; a failure is reported, collected and gets rows
/// with the reason as their status.
fn process_or_fail(
    item: &Item,
    images_root: &Path,
    cfg: &PipelineConfig,
    opts: &BatchOptions,
    journal: &Mutex<std::fs::File>,
    failures: &Mutex<Vec<Failure>>,
    bar: &ProgressBar,
) -> Vec<ManifestRow> {
    let (row, file) = (&item.row, &item.file);
    match process_one(file, images_root, item, cfg, &opts.out) {
        Ok(rows) => {
            let line = JournalEntry::line(item, &rows);
            let mut j = journal.lock().expect("journal lock");
            // A failed journal write only costs redoing this image on resume.
            let _ = writeln!(j, "{line}").and_then(|_| j.flush());
            rows
        }
        Err(reason) => {
            bar.println(format!("failed: {}: {reason}", file.display()));
            failures.lock().expect("failures lock").push(Failure {
                file: file.display().to_string(),
                reason: reason.clone(),
            });
            cfg.sizes
                .iter()
                .map(|s| ManifestRow {
                    height: s.height,
                    width: s.width,
                    status: Status::Failed(reason.clone()),
                    ..base_row(row, &item.split)
                })
                .collect()
        }
    }
}

fn size_dir(r: &ManifestRow) -> String {
    crate::OutputSize {
        height: r.height,
        width: r.width,
    }
    .label()
}

fn base_row(row: &RsnaRow, split: &str) -> ManifestRow {
    ManifestRow {
        patient_id: row.patient_id.clone(),
        image_id: row.image_id.clone(),
        laterality: row.laterality.clone(),
        view: row.view.clone(),
        label: row.label().map(|l| l == 1),
        site_id: row.site_id.clone(),
        machine_id: row.machine_id.clone(),
        age: row.age.clone(),
        density: row.density.clone(),
        biopsy: row.biopsy.clone(),
        invasive: row.invasive.clone(),
        birads: row.birads.clone(),
        implant: row.implant.clone(),
        difficult_negative_case: row.difficult_negative_case.clone(),
        split: split.to_string(),
        ..Default::default()
    }
}

/// Checks that `file` resolves (symbolic links followed) inside `root`, which must be
/// canonical. That it is a regular file, not a FIFO that would block, is
/// [`mammo_dicom::DicomImage::open`]'s check.
fn check_input(file: &Path, root: &Path) -> Result<(), InputPathError> {
    check_under(file, root, "--images")
}

/// [`check_input`] for a root that the user knows as `root_name` (a flag, a folder).
pub(crate) fn check_under(
    file: &Path,
    root: &Path,
    root_name: &'static str,
) -> Result<(), InputPathError> {
    let real = std::fs::canonicalize(file).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => InputPathError::NotFound { file: file.into() },
        _ => InputPathError::Io {
            file: file.into(),
            source,
        },
    })?;
    if !real.starts_with(root) {
        return Err(InputPathError::Outside {
            file: file.into(),
            real,
            root_name,
            root: root.into(),
        });
    }
    Ok(())
}

fn process_one(
    file: &Path,
    images_root: &Path,
    item: &Item,
    cfg: &PipelineConfig,
    out: &Path,
) -> Result<Vec<ManifestRow>, String> {
    let row = &item.row;
    check_input(file, images_root).map_err(|e| e.to_string())?;
    // The reason is recorded as text (failures.csv, the manifest's status).
    let p: Processed =
        process_image(file, cfg, Some(&row.laterality)).map_err(|e| e.to_string())?;
    let mut rows = Vec::with_capacity(p.outputs.len());
    for o in &p.outputs {
        let rel = format!("{}/{}.png", row.patient_id, row.image_id);
        let dir = out.join(o.size.label()).join(&row.patient_id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let png = out.join(o.size.label()).join(&rel);
        mammo_image::write_png_gray(&png, o.size.width, o.size.height, &o.pixels, cfg.bits)
            .map_err(|e| e.to_string())?;
        rows.push(ManifestRow {
            path: rel,
            height: o.size.height,
            width: o.size.width,
            source_width: p.source_width,
            source_height: p.source_height,
            decode_reduce: p.reduce,
            crop_x0: p.crop.x0,
            crop_y0: p.crop.y0,
            crop_x1: p.crop.x1,
            crop_y1: p.crop.y1,
            flipped: p.flipped,
            scale_x: o.placement.scale_x,
            scale_y: o.placement.scale_y,
            offset_x: o.placement.offset_x,
            offset_y: o.placement.offset_y,
            voi: p.voi_used.clone(),
            inverted: p.inverted,
            status: if !cfg.crop || p.breast_found {
                Status::Ok
            } else {
                Status::NoBreastFound
            },
            laterality: if row.laterality.is_empty() {
                p.laterality.clone().unwrap_or_default()
            } else {
                row.laterality.clone()
            },
            ..base_row(row, &item.split)
        });
    }
    Ok(rows)
}

fn read_journal(path: &Path) -> HashMap<String, JournalEntry> {
    let Ok(file) = std::fs::File::open(path) else {
        return HashMap::new();
    };
    // A line cut short by a kill is simply not parsed.
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<JournalEntry>(&l).ok())
        .map(|e| (e.image_id.clone(), e))
        .collect()
}

fn check_settings(opts: &BatchOptions, cfg: &PipelineConfig) -> Result<(), PreprocessError> {
    let path = opts.out.join("preprocess.json");
    let settings = SavedSettings {
        tool: "mammo".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        csv: opts.csv.display().to_string(),
        images: opts.images.display().to_string(),
        pipeline: cfg.clone(),
    };
    if let Ok(text) = std::fs::read_to_string(&path) {
        let old: SavedSettings =
            serde_json::from_str(&text).map_err(|e| PreprocessError::SettingsChanged {
                path: opts.out.clone(),
                reason: format!("unreadable {}: {e}", path.display()),
            })?;
        if old.pipeline != settings.pipeline {
            return Err(PreprocessError::SettingsChanged {
                path: opts.out.clone(),
                reason: format!(
                    "saved {}, requested {}",
                    serde_json::to_string(&old.pipeline).unwrap_or_default(),
                    serde_json::to_string(&settings.pipeline).unwrap_or_default()
                ),
            });
        }
        return Ok(());
    }
    let text = serde_json::to_string_pretty(&settings).expect("settings serialise");
    mammo_image::write_atomic(&path, text.as_bytes()).map_err(|e| io_err(&path, e))
}
