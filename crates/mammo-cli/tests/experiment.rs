//! End-to-end tests of `mammo experiment`: the report a browser renders, the augmented stage
//! (a generator per fold), pretrained weights and steps reused or rerun across builds.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{TINY_DATA_AND_TRAINING, TINY_GAN, browser, mammo, stderr, tempdir};

/// `mammo experiment --config CONFIG --out OUT` and `extra`.
fn experiment(config: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "experiment",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    mammo(&args)
}

/// `mammo experiment` end to end at toy scale: every step runs, a second call reuses them all,
/// the Table 2 files hold one row per stage x model, and `report.html` opens in a headless
/// browser with its table and every image decoded. The experiment's own numbers are not
/// checked here (one epoch at 32 px learns nothing); the training tests check learning.
#[test]
fn experiment_writes_a_report_that_a_browser_renders() {
    let dir = tempdir("experiment");
    let config = dir.join("tiny.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[experiment]
name = "cli test"
resolutions = [32]
stages = ["original", "processed"]
models = ["resnet18"]
{TINY_DATA_AND_TRAINING}[explain]
method = "gradcam"
images = 4
figures = 2
"#
        ),
    )
    .unwrap();
    let out = dir.join("exp");
    let run = || experiment(&config, &out, &["--quiet"]);
    // The plan first: every step, in the order and with the count the run then shows, and
    // nothing written.
    let dry = experiment(&config, &out, &["--quiet", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert_eq!(
        plan.lines().collect::<Vec<_>>(),
        [
            "[1/8] data phantom",
            "[2/8] preprocess original",
            "[3/8] preprocess processed",
            "[4/8] train original-32-resnet18",
            "[5/8] explain original-32-resnet18",
            "[6/8] train processed-32-resnet18",
            "[7/8] explain processed-32-resnet18",
            "[8/8] report",
        ],
        "{plan}"
    );
    assert!(!out.exists(), "--dry-run wrote {}", out.display());
    let o = run();
    assert!(o.status.success(), "{}", stderr(&o));
    for line in plan.lines() {
        assert!(stderr(&o).contains(line), "{line} not in\n{}", stderr(&o));
    }
    let report = out.join("report/report.html");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("report: {}", report.display())
    );

    let again = run();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("7 reused"), "{}", stderr(&again));

    let csv = std::fs::read_to_string(out.join("report/table2_32.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].starts_with("32,original,resnet18,")
            && rows[1].starts_with("32,processed,resnet18,"),
        "{csv}"
    );
    let md = std::fs::read_to_string(out.join("report/table2.md")).unwrap();
    assert!(
        md.contains("| Original dataset | resnet18 |")
            && md.contains("| Processed dataset | resnet18 |"),
        "{md}"
    );
    // The localisation columns are named after the configured method, and the findings
    // give the paper's CAM beside it.
    assert!(
        md.contains("| pF1 | Grad-CAM pointing | Grad-CAM box IoU |")
            && md.contains("Grad-CAM at ")
            && md.contains("CAM, the paper's method, points for "),
        "{md}"
    );
    // The findings say, in words, how the stages compare and what phantom data can show.
    assert!(
        md.contains("resnet18 at 32 px: AUC original ")
            && (md.contains("paper's ordering") || md.contains("beyond chance"))
            && md.contains("cannot show clinical performance"),
        "{md}"
    );

    // A changed setting reruns only what it reaches: the training, explanations and report.
    let changed = std::fs::read_to_string(&config)
        .unwrap()
        .replace("lr = 1e-3", "lr = 2e-3");
    std::fs::write(&config, changed).unwrap();
    let o = run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 reused"), "{}", stderr(&o));

    let html = std::fs::read_to_string(&report).unwrap();
    let images = html.matches("<img ").count();
    // Per run: AUC, loss, ROC and confusion plots plus 2 triptychs.
    assert_eq!(images, 2 * 6, "{html}");
    // With lesion boxes, every method is scored at every feature layer.
    assert_eq!(html.matches("<table class=\"grid\">").count(), 2, "{html}");
    assert!(html.contains("<td>layer3</td>"), "{html}");
    let Some(b) = browser() else {
        panic!(
            "no headless browser: install Debian's `chromium` (what .ci/run does) to render \
             report.html"
        );
    };
    let o = Command::new(b)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("run the browser");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        dom.contains("id=\"table2-32\""),
        "table missing from the rendered page: {}",
        stderr(&o)
    );
    assert!(
        dom.contains("<td>Original dataset</td><td>resnet18</td>"),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("data-images=\"{images}\""))
            && dom.contains(&format!("data-images-loaded=\"{images}\"")),
        "not every image decoded: {}",
        &dom[..dom.len().min(400)]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The augmented stage with a GAN small enough for a test (`TINY_GAN`: a few steps at 16 and
/// 32 px).
#[test]
fn experiment_augmented_stage_trains_a_generator_per_fold() {
    let dir = tempdir("augmented");
    let gan = dir.join("tiny-gan.toml");
    std::fs::write(&gan, TINY_GAN).unwrap();
    let config = dir.join("aug.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[experiment]
name = "augmented test"
resolutions = [32]
stages = ["augmented"]
models = ["resnet18"]
synthetic_positives = 6
{TINY_DATA_AND_TRAINING}[explain]
method = "gradcam"
images = 4
figures = 2
[gan]
config = "{}"
stem_kimg = 0.016
head_kimg = 0.016
"#,
            gan.display()
        ),
    )
    .unwrap();
    let out = dir.join("exp");
    let o = experiment(&config, &out, &["--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // data, preprocess (processed), a generator per fold, train, explain, report
    assert!(
        stderr(&o).contains("[3/7] gan 32-fold0")
            && stderr(&o).contains("[4/7] gan 32-fold1")
            && stderr(&o).contains("[7/7] report"),
        "{}",
        stderr(&o)
    );

    // each fold's synthetic rows join only that fold's training
    let run = std::fs::read_dir(out.join("steps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("train-augmented-32")
        })
        .unwrap();
    let folds = std::fs::read_to_string(run.join("run/folds.csv")).unwrap();
    assert!(
        folds
            .lines()
            .next()
            .unwrap()
            .ends_with("fold,synthetic_fold"),
        "{folds}"
    );
    for k in 0..2 {
        let n = folds
            .lines()
            .filter(|l| l.contains(",1,1,,") && l.ends_with(&format!(",{k}")))
            .count();
        assert_eq!(n, 6, "fold {k}: {folds}");
    }
    // no generator saw its fold's validation positives
    for k in 0..2 {
        let gdir = std::fs::read_dir(out.join("steps"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("gan-32-fold{k}"))
            })
            .unwrap();
        let used = std::fs::read_to_string(gdir.join("real_positives.csv")).unwrap();
        for line in folds
            .lines()
            .skip(1)
            .filter(|l| l.ends_with(&format!(",{k},")))
        {
            let id = line.split(',').next().unwrap();
            assert!(
                !used.contains(&format!(",{id},")),
                "fold {k}'s validation image {id} trained its generator"
            );
        }
    }
    let csv = std::fs::read_to_string(out.join("report/table2_32.csv")).unwrap();
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("32,augmented,resnet18,"),
        "{csv}"
    );
    let html = std::fs::read_to_string(out.join("report/report.html")).unwrap();
    assert!(html.contains("Processed + synthetic positives"), "{html}");
    for stage in ["g16", "g32"] {
        assert!(
            out.join(format!("report/figures/gan-32-fold0-{stage}.png"))
                .exists(),
            "Figure 1 image for {stage} missing"
        );
        assert!(html.contains(&format!("figures/gan-32-fold0-{stage}.png")));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The step folders under `out/steps` whose names start with `prefix`.
fn step_dirs(out: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("steps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// Pretrained weights in `mammo experiment` (a timm checkpoint found with `--weights-dir` in a
/// Hugging Face hub cache, or named in `[weights]`, 3 input channels adapted to 1) and step
/// keys that carry the code's fingerprint: a step done by an earlier build reruns unless
/// `--reuse-stale` keeps it.
#[test]
fn experiment_starts_from_pretrained_weights_and_reruns_what_a_new_build_changed() {
    let dir = tempdir("weights");
    // A timm-layout resnet18 checkpoint: RGB input and ImageNet's 1000 classes.
    let cfg = mammo_models::ModelConfig::new("resnet18")
        .unwrap()
        .with_in_chans(3)
        .with_num_classes(1000);
    let flex = mammo_models::DeviceSpec::Flex.open().unwrap().device;
    let model = mammo_models::create_model(&cfg, &flex).unwrap();
    let repo = dir.join("hub/models--timm--resnet18.a1_in1k");
    let snapshot = repo.join("snapshots/0123abcd");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    let checkpoint = snapshot.join("model.safetensors");
    mammo_models::save_safetensors(&model, &cfg, &checkpoint).unwrap();

    let config = dir.join("weights.toml");
    let toml = format!(
        r#"
[experiment]
name = "weights test"
resolutions = [32]
stages = ["original"]
models = ["resnet18"]
{TINY_DATA_AND_TRAINING}[explain]
method = "gradcam"
images = 2
figures = 1
"#
    );
    std::fs::write(&config, &toml).unwrap();
    let out = dir.join("exp");
    let run = |extra: &[&str]| {
        let o = experiment(&config, &out, &[&["--quiet"], extra].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };

    // No weights: from scratch, and the report says so.
    let e = run(&[]);
    assert!(
        e.contains("resnet18: no pretrained weights named or found: trained from scratch"),
        "{e}"
    );
    let md = std::fs::read_to_string(out.join("report/table2.md")).unwrap();
    assert!(md.contains("resnet18 trained from scratch"), "{md}");

    // An earlier build's training: same settings, another code fingerprint.
    let [train] = step_dirs(&out, "train-original-32-resnet18-")
        .try_into()
        .unwrap();
    let done_path = train.join("done.json");
    let done = std::fs::read_to_string(&done_path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&done).unwrap();
    value["key"]["code"]["train"] = "00000000000000ff".into();
    std::fs::write(&done_path, value.to_string()).unwrap();
    let old = out.join("steps/train-original-32-resnet18-0000000000ff");
    std::fs::rename(&train, &old).unwrap();

    let e = run(&["--reuse-stale"]);
    assert!(
        e.contains("train original-32-resnet18 (done by an earlier build, reused: --reuse-stale)"),
        "{e}"
    );
    // The explanations are keyed on the training actually used, the earlier build's, so
    // they are made again for it.
    assert!(
        e.contains("3 reused from earlier calls, 1 of them done by an earlier build"),
        "{e}"
    );
    let e = run(&[]);
    assert!(
        e.contains("an earlier build did it; the code changed, so it runs again"),
        "{e}"
    );
    assert!(e.contains("3 reused from earlier calls)"), "{e}");
    assert_eq!(step_dirs(&out, "train-original-32-resnet18-").len(), 2);

    // Weights from the hub cache: the training and its explanations run again, the data and
    // preprocessing do not; the file and its digest are recorded.
    let hub = dir.join("hub");
    let e = run(&["--weights-dir", hub.to_str().unwrap()]);
    assert!(
        e.contains("resnet18: pretrained weights")
            && e.contains("models--timm--resnet18.a1_in1k@0123abcd"),
        "{e}"
    );
    assert!(e.contains("2 reused from earlier calls)"), "{e}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("experiment.json")).unwrap())
            .unwrap();
    let w = &meta["weights"]["resnet18"];
    assert_eq!(
        w["origin"], "models--timm--resnet18.a1_in1k@0123abcd",
        "{meta}"
    );
    assert_eq!(w["file"], checkpoint.to_str().unwrap(), "{meta}");
    let sha = w["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    assert_eq!(meta["code"].as_object().unwrap().len(), 5, "{meta}");
    let md = std::fs::read_to_string(out.join("report/table2.md")).unwrap();
    assert!(
        md.contains("every model pretrained") && md.contains(&sha[..12]),
        "{md}"
    );

    // The same bytes named in [weights] (relative to the experiment file): the same training,
    // reused; the report names the new origin.
    std::fs::copy(&checkpoint, dir.join("r18.safetensors")).unwrap();
    std::fs::write(
        &config,
        format!("{toml}[weights]\nresnet18 = \"r18.safetensors\"\n"),
    )
    .unwrap();
    let e = run(&[]);
    assert!(e.contains("4 reused from earlier calls)"), "{e}");
    let md = std::fs::read_to_string(out.join("report/table2.md")).unwrap();
    assert!(
        md.contains("([weights], sha256 ") && md.contains(&sha[..12]),
        "{md}"
    );

    // Usage errors: a missing weights folder, a model name [weights] does not know.
    let o = experiment(
        &config,
        &out,
        &["--weights-dir", dir.join("absent").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a folder"), "{}", stderr(&o));
    std::fs::write(
        &config,
        format!("{toml}[weights]\nresnet19 = \"r18.safetensors\"\n"),
    )
    .unwrap();
    let o = experiment(&config, &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("[weights] \"resnet19\""),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}
