//! The paper's Table 2 (per resolution: stage x model, mean ± std over folds) as Markdown,
//! CSV and HTML, and `report.html` linking every figure: training curves (Figure 4),
//! confusion matrices (Figure 5), original / CAM / box triptychs (Figure 6). Everything is
//! copied beside the report, so the folder opens offline and can be moved as a whole.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mammo_plot::esc;
use mammo_train::RunMetrics;
use mammo_train::report::MeanStd;

use crate::config::{ExperimentConfig, Stage};
use crate::explain::ExplainStep;
use crate::{ExperimentError, io_err};

/// One trained and explained run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub resolution: u32,
    pub stage: Stage,
    pub model: String,
    pub run_dir: PathBuf,
    pub metrics: RunMetrics,
    pub explanation: ExplainStep,
}

impl RunResult {
    fn slug(&self) -> String {
        format!("{}-{}-{}", self.stage, self.resolution, self.model)
    }
}

pub struct ReportInput<'a> {
    pub name: &'a str,
    pub out: &'a Path,
    pub config: &'a ExperimentConfig,
    pub results: &'a [RunResult],
    /// The augmented stage's generators (empty without it).
    pub gans: &'a [crate::gan::GanFold],
    pub seconds: f64,
    /// The data is the built-in phantom (not `--data`).
    pub phantom: bool,
    /// Pretrained weights per model; a model not in it was trained from scratch.
    pub weights: &'a std::collections::BTreeMap<String, crate::weights::ModelWeights>,
}

/// "What this run shows", in words: per model and resolution, whether the stages' mean AUCs
/// come in the paper's order (original < processed < augmented) and by more than the folds'
/// spread, and how well the maps point; then what the data can and cannot show.
pub fn findings(input: &ReportInput<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut keys: Vec<(u32, &str)> = input
        .results
        .iter()
        .map(|r| (r.resolution, r.model.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for (res, model) in keys {
        let mut runs: Vec<&RunResult> = input
            .results
            .iter()
            .filter(|r| r.resolution == res && r.model == model)
            .collect();
        runs.sort_by_key(|r| r.stage);
        let aucs: Vec<String> = runs
            .iter()
            .map(|r| {
                let a = r.metrics.mean.roc_auc;
                format!("{} {:.3} ± {:.3}", r.stage.name(), a.mean, a.std)
            })
            .collect();
        let mut text = format!("{model} at {res} px: AUC {}.", aucs.join(", "));
        // Chance: within the folds' spread (at least 0.05) of 0.5.
        let at_chance = |r: &&RunResult| {
            let a = r.metrics.mean.roc_auc;
            (a.mean - 0.5).abs() <= a.std.max(0.05)
        };
        if runs.iter().all(at_chance) {
            text += " No stage learned beyond chance (every AUC within the folds' spread of 0.5): \
                     at this budget the model did not find the lesion, and the stages cannot be \
                     compared.";
        } else if runs.len() > 1 {
            let ordered = runs
                .windows(2)
                .all(|w| w[0].metrics.mean.roc_auc.mean < w[1].metrics.mean.roc_auc.mean);
            let clear = runs.windows(2).all(|w| {
                let (a, b) = (w[0].metrics.mean.roc_auc, w[1].metrics.mean.roc_auc);
                b.mean - a.mean > a.std.max(b.std)
            });
            text += if ordered && clear {
                " The paper's ordering holds, each step by more than the folds' spread."
            } else if ordered {
                " The paper's ordering holds, but within the folds' spread: this run cannot tell \
                 the stages apart."
            } else {
                " This is NOT the paper's ordering (original < processed < augmented)."
            };
        }
        for r in &runs {
            if let Some(l) = &r.explanation.localisation {
                text += &format!(
                    " {}: {} at {} points inside the lesion for {:.0}% of {} positives (mean box \
                     IoU {:.2}).",
                    r.stage.name(),
                    method_label(&r.explanation.method),
                    r.explanation.layer,
                    100.0 * l.pointing_game,
                    l.images,
                    l.mean_iou
                );
                // The paper's CAM, at its best layer on the same images, when the table shows
                // another method: the comparison the table would otherwise hide.
                if r.explanation.method != "cam"
                    && let Some(cam) = r
                        .explanation
                        .grid
                        .iter()
                        .filter(|c| c.method == "cam")
                        .max_by(|a, b| {
                            a.localisation
                                .pointing_game
                                .total_cmp(&b.localisation.pointing_game)
                        })
                {
                    text += &format!(
                        " CAM, the paper's method, points for {:.0}% at its best layer ({}).",
                        100.0 * cam.localisation.pointing_game,
                        cam.layer
                    );
                }
            }
        }
        out.push(text);
    }
    let scratch: Vec<&str> = input
        .config
        .experiment
        .models
        .iter()
        .filter(|m| !input.weights.contains_key(*m))
        .map(String::as_str)
        .collect();
    let mut text = String::from("Starting weights: ");
    for (model, w) in input.weights {
        if input.config.experiment.models.contains(model) {
            text += &format!(
                "{model} from {} ({}, sha256 {}); ",
                w.file.display(),
                w.origin,
                &w.sha256[..12]
            );
        }
    }
    if scratch.is_empty() {
        text += "every model pretrained, as in the paper.";
    } else {
        text += &format!(
            "{} trained from scratch (no pretrained weights named in [weights] or found with \
             --weights-dir), unlike the paper, which starts from ImageNet weights.",
            scratch.join(", ")
        );
    }
    out.push(text);
    out.push(if input.phantom {
        "The data is mammo's phantom: simulated screening images with a known lesion in every \
         cancer breast, no global image statistic that separates cancer from normal images (a \
         test checks it), and lesions far more conspicuous than real ones. It can show that the \
         pipeline learns and localises a lesion and how the stages compare on such data; it \
         cannot show clinical performance, and its figures are not comparable to the paper's RSNA \
         results."
            .to_string()
    } else {
        "The data was given with --data; the figures are those of this data set and these \
         settings only."
            .to_string()
    });
    out
}

/// Table 2 columns: (header, value).
fn columns(r: &RunResult) -> [(&'static str, MeanStd, bool); 6] {
    let m = &r.metrics.mean;
    [
        ("Accuracy", m.accuracy, true),
        ("AUC", m.roc_auc, true),
        ("Precision", m.precision, true),
        ("Recall", m.recall, true),
        ("F1", m.f1, true),
        ("pF1", m.pf1, false),
    ]
}

fn cell(v: MeanStd, percent: bool) -> String {
    if !v.mean.is_finite() {
        return "n/a".into();
    }
    if percent {
        format!("{:.2} ± {:.2}", 100.0 * v.mean, 100.0 * v.std)
    } else {
        format!("{:.4} ± {:.4}", v.mean, v.std)
    }
}

/// Pointing game / mean IoU of every method at every feature layer, as an HTML table.
fn localisation_grid(e: &ExplainStep) -> String {
    if e.grid.is_empty() {
        return String::new();
    }
    let mut methods: Vec<&str> = Vec::new();
    let mut layers: Vec<&str> = Vec::new();
    for c in &e.grid {
        if !methods.contains(&c.method.as_str()) {
            methods.push(&c.method);
        }
        if !layers.contains(&c.layer.as_str()) {
            layers.push(&c.layer);
        }
    }
    let mut html = String::from("<table class=\"grid\"><tr><th>layer</th>");
    for m in &methods {
        html += &format!("<th>{}</th>", esc(m));
    }
    html += "</tr>\n";
    for l in &layers {
        html += &format!("<tr><td>{}</td>", esc(l));
        for m in &methods {
            let cell = e
                .grid
                .iter()
                .find(|c| c.method == *m && c.layer == *l)
                .map_or(String::from("n/a"), |c| {
                    format!(
                        "{:.2} / {:.2}",
                        c.localisation.pointing_game, c.localisation.mean_iou
                    )
                });
            let mark = if *m == e.method && *l == e.layer {
                " class=\"chosen\""
            } else {
                ""
            };
            html += &format!("<td{mark}>{cell}</td>");
        }
        html += "</tr>\n";
    }
    html += &format!(
        "</table>\n<p class=\"note\">Pointing game / mean IoU of the centered box, per method and \
         feature layer, over the same {} images. {}</p>\n",
        e.images,
        if e.layer_chosen {
            format!(
                "The triptychs and Table 2 use {} at {}, the layer where it points best on these \
                 images: a choice made on the evaluation images themselves, so optimistic.",
                esc(&method_label(&e.method)),
                esc(&e.layer)
            )
        } else {
            format!(
                "The triptychs and Table 2 use {} at {}.",
                esc(&method_label(&e.method)),
                esc(&e.layer)
            )
        }
    );
    html
}

/// A method's name as its paper writes it ("Grad-CAM++" for `gradcam++`).
fn method_label(name: &str) -> String {
    name.parse::<mammo_explain::Method>()
        .map_or_else(|_| name.to_string(), |m| m.label().to_string())
}

/// The heading of Table 2's localisation columns: the maps' method as its paper writes it
/// when every row used the same one ("LayerCAM"), else "Map" (each row's method and layer are
/// in the explanation section).
fn map_label(rows: &[&RunResult]) -> String {
    let mut labels: Vec<String> = rows
        .iter()
        .map(|r| method_label(&r.explanation.method))
        .collect();
    labels.dedup();
    match labels.as_slice() {
        [one] => one.clone(),
        _ => "Map".into(),
    }
}

fn localisation(r: &RunResult) -> (String, String) {
    match &r.explanation.localisation {
        Some(l) => (
            format!("{:.3}", l.pointing_game),
            format!("{:.3}", l.mean_iou),
        ),
        None => ("n/a".into(), "n/a".into()),
    }
}

/// Table 2 at one resolution, Markdown.
pub fn table_markdown(res: u32, rows: &[&RunResult]) -> String {
    let map = map_label(rows);
    let mut s = format!(
        "## Table 2 at {res}x{res}\n\n\
         | Data | Model | Accuracy (%) | AUC (%) | Precision (%) | Recall (%) | F1 (%) | pF1 | \
         {map} pointing | {map} box IoU |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let cells: Vec<String> = columns(r).iter().map(|&(_, v, p)| cell(v, p)).collect();
        let (pg, iou) = localisation(r);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {pg} | {iou} |",
            r.stage.label(),
            r.model,
            cells.join(" | ")
        );
    }
    s
}

/// Table 2 at one resolution, CSV (plain numbers, fractions).
pub fn table_csv(rows: &[&RunResult]) -> String {
    let mut s = String::from(
        "resolution,stage,model,accuracy,accuracy_std,auc,auc_std,precision,precision_std,recall,recall_std,f1,f1_std,pf1,pf1_std,pooled_auc,pointing_game,mean_iou\n",
    );
    for r in rows {
        let _ = write!(s, "{},{},{}", r.resolution, r.stage, r.model);
        for (_, v, _) in columns(r) {
            let _ = write!(s, ",{},{}", v.mean, v.std);
        }
        let pooled = r
            .metrics
            .pooled
            .binary
            .roc_auc
            .map_or(String::new(), |a| a.to_string());
        let (pg, iou) = r
            .explanation
            .localisation
            .map_or((String::new(), String::new()), |l| {
                (l.pointing_game.to_string(), l.mean_iou.to_string())
            });
        let _ = writeln!(s, ",{pooled},{pg},{iou}");
    }
    s
}

/// Table 2 at one resolution, an HTML `<table>`.
pub fn table_html(res: u32, rows: &[&RunResult]) -> String {
    let mut s = format!(
        "<table class=\"t2\" id=\"table2-{res}\"><caption>Table 2 at {res}x{res}: mean ± std over \
         folds</caption>\n<tr><th>Data</th><th>Model</th>"
    );
    let map = map_label(rows);
    for h in [
        "Accuracy (%)",
        "AUC (%)",
        "Precision (%)",
        "Recall (%)",
        "F1 (%)",
        "pF1",
        &format!("{map} pointing"),
        &format!("{map} box IoU"),
    ] {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s += "</tr>\n";
    for r in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td>",
            esc(r.stage.label()),
            esc(&r.model)
        );
        for (_, v, p) in columns(r) {
            let _ = write!(s, "<td>{}</td>", cell(v, p));
        }
        let (pg, iou) = localisation(r);
        let _ = writeln!(s, "<td>{pg}</td><td>{iou}</td></tr>");
    }
    s + "</table>\n"
}

fn copy(from: &Path, to: &Path) -> Result<(), ExperimentError> {
    let bytes = std::fs::read(from).map_err(|e| io_err("read", from, e))?;
    mammo_image::write_atomic(to, &bytes).map_err(|e| io_err("write", to, e))
}

fn write(path: &Path, text: &str) -> Result<(), ExperimentError> {
    mammo_image::write_atomic(path, text.as_bytes()).map_err(|e| io_err("write", path, e))
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}td:first-child,td:nth-child(2){text-align:left}\
figure{display:inline-block;margin:0.5em;vertical-align:top}figure img{max-width:420px;border:1px solid #ddd}\
.trip img{max-width:600px;image-rendering:pixelated}td.chosen{font-weight:bold;background:#e8f4e8}pre{background:#f4f4f4;padding:1em;overflow:auto}";

/// After loading, the page records on `<body>` how many of its images a browser decoded
/// (`data-images-loaded` of `data-images`): what the headless-browser test reads.
const LOADED_SCRIPT: &str = "<script>window.addEventListener('load',function(){var i=document.images,n=0;\
for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}\
document.body.setAttribute('data-images',i.length);document.body.setAttribute('data-images-loaded',n);});</script>\n";

/// Writes the tables and `report.html`; returns the report's path.
pub fn write_report(input: &ReportInput<'_>) -> Result<PathBuf, ExperimentError> {
    let out = input.out;
    let figures = out.join("figures");
    std::fs::create_dir_all(&figures).map_err(|e| io_err("create", &figures, e))?;
    let mut resolutions: Vec<u32> = input.results.iter().map(|r| r.resolution).collect();
    resolutions.sort_unstable();
    resolutions.dedup();

    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mammo experiment {name}</title><style>{STYLE}</style></head><body>\n\
         <h1>mammo experiment: {name}</h1>\n<p>Algorithm 1 of Prodan, Paraschiv &amp; Stanciu (Appl. Sci. 2023, 13, 4272): {runs} runs \
         ({stages} data stages x {models} models x {res} resolutions), {folds}-fold cross-validation, metrics of the {select} epoch of each fold \
         on its validation fold. Wall time {mins:.1} min. mammo {ver} (training code {code}), burn 0.22.1.</p>\n",
        name = esc(input.name),
        runs = input.results.len(),
        stages = input.config.experiment.stages.len(),
        models = input.config.experiment.models.len(),
        res = resolutions.len(),
        folds = input.config.train.folds,
        select = input.config.train.select.label(),
        mins = input.seconds / 60.0,
        ver = env!("CARGO_PKG_VERSION"),
        code = crate::code::fingerprint("train"),
    );
    html += "<h2>What this run shows</h2>\n";
    let findings = findings(input);
    for f in &findings {
        html += &format!("<p class=\"finding\">{}</p>\n", esc(f));
    }
    let mut md = format!("# mammo experiment: {}\n\n", input.name);
    for f in &findings {
        md += &format!("{f}\n\n");
    }
    for &res in &resolutions {
        let rows: Vec<&RunResult> = input
            .results
            .iter()
            .filter(|r| r.resolution == res)
            .collect();
        let t = table_markdown(res, &rows);
        write(&out.join(format!("table2_{res}.md")), &t)?;
        write(&out.join(format!("table2_{res}.csv")), &table_csv(&rows))?;
        let th = table_html(res, &rows);
        write(
            &out.join(format!("table2_{res}.html")),
            &format!(
                "<!DOCTYPE html><html><head><meta \
                 charset=\"utf-8\"><style>{STYLE}</style></head><body>{th}</body></html>\n"
            ),
        )?;
        md += &t;
        md += "\n";
        html += &format!(
            "<h2>Table 2 at {res}x{res}</h2>\n{th}<p>Tables: <a href=\"table2_{res}.md\">Markdown</a>, <a href=\"table2_{res}.csv\">CSV</a>. \
             Percentages at threshold 0.5; pF1 = per-breast probabilistic F1 (RSNA); pointing / box IoU: the map's peak inside a lesion box / \
             the centered box against lesion boxes, over explained validation positives (method and layer: Figure 6).</p>\n"
        );
    }
    write(&out.join("table2.md"), &md)?;

    html += "<h2>Figure 1: generator samples over training</h2>\n";
    if input.gans.is_empty() {
        html += "<p>No augmented stage in this experiment, so no generator was trained.</p>\n";
    } else {
        html += "<p>Fixed latents of each fold's EMA generator at each checkpoint (top: start of the stage, bottom: end), per stage of the \
                 16 px stem and its super-resolution stages; FID/KID against the fold's held-out training positives.</p>\n<table><tr><th>resolution</th><th>fold</th>\
                 <th>real positives</th><th>FID</th><th>KID</th><th>features</th></tr>\n";
        for g in input.gans {
            html += &format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                g.resolution,
                g.fold,
                g.positives,
                g.last_fid.map_or("n/a".into(), |v| format!("{v:.2}")),
                g.last_kid.map_or("n/a".into(), |v| format!("{v:.4}")),
                esc(&g.features)
            );
        }
        html += "</table>\n";
        for g in input.gans.iter().filter(|g| g.fold == 0) {
            for run in &g.runs {
                let src = run.join("samples/progress.png");
                if !src.exists() {
                    continue;
                }
                let stage = run
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned());
                let name = format!("gan-{}-fold0-{stage}.png", g.resolution);
                copy(&src, &figures.join(&name))?;
                html += &format!(
                    "<figure><img src=\"figures/{name}\" alt=\"generator samples over \
                     training\"><figcaption>{}x{} generator, fold 0, stage \
                     {stage}</figcaption></figure>\n",
                    g.resolution, g.resolution
                );
            }
        }
    }
    html += "<h2>Figures 4 and 5: training curves and confusion matrices</h2>\n";
    for r in input.results {
        let slug = r.slug();
        let dir = figures.join(&slug);
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        html += &format!(
            "<h3 id=\"{slug}\">{} · {} · {}x{}</h3>\n",
            esc(r.stage.label()),
            esc(&r.model),
            r.resolution,
            r.resolution
        );
        for (file, caption) in [
            ("auc.svg", "validation AUC per epoch"),
            ("loss.svg", "loss per epoch"),
            ("roc.svg", "ROC, out-of-fold"),
            ("confusion.svg", "confusion matrix, out-of-fold"),
        ] {
            let src = r.run_dir.join("plots").join(file);
            if src.exists() {
                copy(&src, &dir.join(file))?;
                html += &format!(
                    "<figure><img src=\"figures/{slug}/{file}\" \
                     alt=\"{caption}\"><figcaption>{caption}</figcaption></figure>\n"
                );
            }
        }
    }
    html += "<h2>Figure 6: original, class activation map, centered box</h2>\n<p>Each fold's model explains positives of its own validation fold. \
             Green: the box centered at the map's peak; red: the true lesion box (phantom data).</p>\n";
    for r in input.results {
        let slug = r.slug();
        let e = &r.explanation;
        if e.triptychs.is_empty() {
            continue;
        }
        let loc = e.localisation.map_or(String::from("no lesion boxes"), |l| {
            format!(
                "{} images: pointing game {:.3}, mean IoU {:.3}, hit@IoU 0.1 {:.3}",
                l.images, l.pointing_game, l.mean_iou, l.hit_rate_iou_0_1
            )
        });
        html += &format!(
            "<h3>{} · {} · {}x{} ({} at {}, box {} px; {loc})</h3>\n",
            esc(r.stage.label()),
            esc(&r.model),
            r.resolution,
            r.resolution,
            esc(&method_label(&e.method)),
            esc(&e.layer),
            e.box_size
        );
        html += &localisation_grid(e);
        let dir = figures.join(&slug);
        std::fs::create_dir_all(&dir).map_err(|err| io_err("create", &dir, err))?;
        for t in &e.triptychs {
            copy(&e.dir.join(t), &dir.join(t))?;
            html += &format!(
                "<figure class=\"trip\"><img src=\"figures/{slug}/{t}\" alt=\"triptych \
                 {t}\"><figcaption>{t}</figcaption></figure>\n"
            );
        }
    }
    let resolved = serde_json::to_string_pretty(input.config).expect("JSON");
    html += &format!(
        "<h2>Resolved configuration</h2>\n<pre>{}</pre>\n{LOADED_SCRIPT}</body></html>\n",
        esc(&resolved)
    );
    let path = out.join("report.html");
    write(&path, &html)?;
    Ok(path)
}
