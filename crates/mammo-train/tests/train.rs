//! Training end to end on a tiny generated dataset: it learns, writes every output, resumes
//! bit-identically after interruption, refuses a changed config, and its fold ensemble
//! predicts and evaluates.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mammo_dataset::{ManifestRow, Status};
use mammo_rand::Rng;
use mammo_train::{
    Ensemble, TrainConfig, TrainOptions, evaluate_manifest, evaluate_run, predict_images, train,
};

const SIZE: usize = 32;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mammo-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `patients` patients with two images each (L and R); a positive breast has a bright
/// blob somewhere on a noisy background.
fn make_dataset(dir: &Path, patients: usize, seed: u64) -> PathBuf {
    let mut rows = Vec::new();
    for p in 0..patients {
        for (k, side) in ["L", "R"].iter().enumerate() {
            let mut rng = Rng::from_keys(seed, &[p as u64, k as u64]);
            let label = u8::from((p + k) % 4 == 0);
            let mut px = vec![0u16; SIZE * SIZE];
            let (cx, cy) = (rng.range(8.0, 24.0), rng.range(8.0, 24.0));
            for y in 0..SIZE {
                for x in 0..SIZE {
                    let mut v = 0.35 + 0.1 * rng.normal();
                    if label == 1 {
                        let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                        v += 0.5 * (-d2 / 18.0).exp();
                    }
                    px[y * SIZE + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u16;
                }
            }
            let rel = format!("{p}/{p}{k}.png");
            std::fs::create_dir_all(dir.join(p.to_string())).unwrap();
            mammo_image::write_png_gray(&dir.join(&rel), SIZE as u32, SIZE as u32, &px, 8).unwrap();
            rows.push(ManifestRow {
                patient_id: format!("{}", 1000 + p),
                image_id: format!("{p}{k}"),
                laterality: side.to_string(),
                view: "CC".into(),
                label: Some(label == 1),
                path: rel,
                height: SIZE as u32,
                width: SIZE as u32,
                status: Status::Ok,
                ..Default::default()
            });
        }
    }
    let path = dir.join("manifest.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    for r in &rows {
        w.serialize(r).unwrap();
    }
    w.flush().unwrap();
    path
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        model: "resnet18".into(),
        folds: 2,
        epochs,
        batch_size: 16,
        eval_batch_size: 32,
        lr: 2e-3,
        oversample_positives: 2,
        seed: 7,
        ..TrainConfig::default()
    }
}

fn options(manifest: &Path, out: &Path) -> TrainOptions {
    TrainOptions {
        manifest: manifest.into(),
        out: out.into(),
        device: Device::flex(),
        progress: false,
        log: false,
        stop_after_epochs: None,
        cache_bytes: 0,
    }
}

#[test]
fn learns_writes_outputs_predicts_and_evaluates() {
    let dir = tmp("learn");
    let manifest = make_dataset(&dir.join("data"), 48, 1);
    let run = dir.join("run");
    let cfg = TrainConfig {
        batch_size: 8,
        ..config(6)
    };
    let report = train(&cfg, &options(&manifest, &run)).unwrap();
    assert!(report.complete);
    let m = report.metrics.expect("metrics of a complete run");
    let auc = m.mean.roc_auc.mean;
    eprintln!("mean AUC {auc:.3}, pooled {:?}", m.pooled.binary.roc_auc);
    assert!(auc > 0.8, "a blob detector should be easy: mean AUC {auc}");

    for f in [
        "train_config.json",
        "model_config.json",
        "run.json",
        "folds.csv",
        "oof_predictions.csv",
        "metrics.json",
        "metrics.md",
        "plots/loss.svg",
        "plots/auc.svg",
        "plots/roc.svg",
        "plots/confusion.svg",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    for k in 0..2 {
        for f in [
            "last.safetensors",
            "best.safetensors",
            "history.csv",
            "predictions_last.csv",
            "predictions_best.csv",
            "checkpoint/state.json",
        ] {
            assert!(
                run.join(format!("fold-{k}")).join(f).is_file(),
                "fold-{k}/{f} missing"
            );
        }
    }
    let oof = std::fs::read_to_string(run.join("oof_predictions.csv")).unwrap();
    assert_eq!(
        oof.lines().count(),
        1 + 96,
        "every image predicted once out of fold"
    );
    let md = std::fs::read_to_string(run.join("metrics.md")).unwrap();
    assert!(
        md.contains("| mean ± std |") && md.contains("| 0 | 6 |"),
        "{md}"
    );

    // A second call on a finished run trains nothing and gives the same metrics.
    let again = train(&cfg, &options(&manifest, &run)).unwrap();
    assert_eq!(again.epochs_run, 0);
    assert_eq!(again.metrics.unwrap().mean.roc_auc.mean, auc);
    assert_eq!(evaluate_run(&run).unwrap().mean.roc_auc.mean, auc);

    // The fold ensemble on fresh images of the same kind.
    let held_out = make_dataset(&dir.join("held"), 12, 99);
    let ens = Ensemble::load(&run, None, &Device::flex()).unwrap();
    assert_eq!(ens.models.len(), 2);
    let em = evaluate_manifest(&ens, &held_out, &dir.join("eval"), false).unwrap();
    assert!(
        em.binary.roc_auc.unwrap() > 0.8,
        "held-out AUC {:?}",
        em.binary.roc_auc
    );
    assert!(dir.join("eval/metrics.md").is_file() && dir.join("eval/predictions.csv").is_file());

    let pos = dir.join("held/0/00.png"); // patient 0 left: positive
    let missing = dir.join("held/nope.png");
    let preds = predict_images(&ens, &[pos.clone(), missing.clone()]);
    let p = preds[0].as_ref().unwrap();
    assert_eq!(p.fold_probabilities.len(), 2);
    assert!((p.probability - p.fold_probabilities.iter().sum::<f64>() / 2.0).abs() < 1e-12);
    let err = preds[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("nope.png"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn interrupted_run_resumes_bit_identical() {
    let dir = tmp("resume");
    let manifest = make_dataset(&dir.join("data"), 16, 2);
    let cfg = TrainConfig {
        batch_size: 8,
        ..config(2)
    };

    let whole = dir.join("whole");
    let a = train(&cfg, &options(&manifest, &whole)).unwrap();
    assert!(a.complete && a.epochs_run == 4);

    let parts = dir.join("parts");
    // 1 epoch, then 2 more (crossing into fold 1), then the rest: three separate calls.
    for (budget, expect_complete) in [(Some(1), false), (Some(2), false), (None, true)] {
        let r = train(
            &cfg,
            &TrainOptions {
                stop_after_epochs: budget,
                cache_bytes: 0,
                ..options(&manifest, &parts)
            },
        )
        .unwrap();
        assert_eq!(r.complete, expect_complete);
    }
    for f in [
        "oof_predictions.csv",
        "fold-0/last.safetensors",
        "fold-1/last.safetensors",
        "fold-1/history.csv",
    ] {
        let read = |root: &Path| std::fs::read(root.join(f)).unwrap();
        if f.ends_with(".csv") && f.contains("history") {
            // history has wall-clock seconds; compare everything else
            let strip = |b: Vec<u8>| {
                String::from_utf8(b)
                    .unwrap()
                    .lines()
                    .map(|l| l.rsplit_once(',').unwrap().0.to_string())
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(read(&whole)), strip(read(&parts)), "{f}");
        } else if f.ends_with(".safetensors") {
            // Tensor by tensor (the header's metadata map has no fixed order).
            let (a, b) = (read(&whole), read(&parts));
            let (a, b) = (
                safetensors::SafeTensors::deserialize(&a).unwrap(),
                safetensors::SafeTensors::deserialize(&b).unwrap(),
            );
            let mut names = a.names();
            names.sort();
            assert_eq!(names.len(), b.names().len());
            for name in names {
                assert!(
                    a.tensor(name).unwrap().data() == b.tensor(name).unwrap().data(),
                    "{f}: tensor {name} differs between the interrupted and the whole run"
                );
            }
        } else {
            assert!(
                read(&whole) == read(&parts),
                "{f} differs between the interrupted and the whole run"
            );
        }
    }

    // Same folder, different settings: refused with both settings shown.
    let changed = TrainConfig {
        lr: 1e-3,
        ..cfg.clone()
    };
    let err = train(&changed, &options(&manifest, &parts))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("different training config") && err.contains("0.001"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_manifest_rows_are_named() {
    let dir = tmp("bad");
    let manifest = make_dataset(&dir.join("data"), 4, 3);
    let text = std::fs::read_to_string(&manifest).unwrap();
    // Unlabelled row.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[3] = lines[3]
        .replacen(",CC,0,", ",CC,,", 1)
        .replacen(",CC,1,", ",CC,,", 1);
    std::fs::write(&manifest, lines.join("\n") + "\n").unwrap();
    let err = train(&config(1), &options(&manifest, &dir.join("run")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("manifest.csv") && err.contains("row 4") && err.contains("label"),
        "{err}"
    );

    // A PNG that went missing after preprocessing.
    std::fs::write(&manifest, text).unwrap();
    std::fs::remove_file(dir.join("data/1/10.png")).unwrap();
    let err = train(&config(1), &options(&manifest, &dir.join("run2")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("10.png"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `cache_bytes` keeps decoded images in memory across epochs and folds; the run it trains is
/// byte-identical to one that reads every PNG each time.
#[test]
fn the_image_cache_changes_nothing_but_speed() {
    let dir = tmp("cache");
    let manifest = make_dataset(&dir.join("data"), 16, 3);
    let cfg = TrainConfig {
        batch_size: 8,
        ..config(2)
    };
    let plain = dir.join("plain");
    train(&cfg, &options(&manifest, &plain)).unwrap();
    let cached = dir.join("cached");
    let opts = TrainOptions {
        cache_bytes: 64 << 20,
        ..options(&manifest, &cached)
    };
    train(&cfg, &opts).unwrap();
    for f in [
        "oof_predictions.csv",
        "fold-0/last.safetensors",
        "fold-1/last.safetensors",
    ] {
        assert_eq!(
            std::fs::read(plain.join(f)).unwrap(),
            std::fs::read(cached.join(f)).unwrap(),
            "{f} differs with the cache"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
