//! The `mammo` binary on a Vulkan device (Mesa's lavapipe on CI): `--device` errors, a
//! one-epoch `mammo train --device vulkan` against the same run on flex, `mammo explain` and a
//! tiny `mammo gan train` on vulkan, and `mammo experiment --device vulkan` against the same
//! experiment on flex. The device-error test always runs; the vulkan runs only
//! with `MAMMO_TEST_VULKAN=1` (see `mammo_models::TEST_VULKAN_ENV`).

use std::path::Path;

mod common;

use common::{TINY_DATA_AND_TRAINING, TINY_GAN, mammo, phantom, preprocess, stderr, tempdir};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `image_id -> probability` from a run's out-of-fold predictions.
fn oof(run: &Path) -> Vec<(String, f64)> {
    let mut r = csv::Reader::from_path(run.join("oof_predictions.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let id = headers
        .iter()
        .position(|h| h == "image_id")
        .expect("image_id column");
    let p = headers
        .iter()
        .position(|h| h == "probability")
        .expect("probability column");
    let mut out: Vec<(String, f64)> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[id].to_string(), rec[p].parse().unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn device_errors_are_usage_errors_that_list_the_devices() {
    let o = mammo(&["predict", "--run", "nope", "--device", "gpu", "x.png"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("auto, flex"), "{}", stderr(&o));
    let o = mammo(&["predict", "--run", "nope", "--device", "vulkan:99", "x.png"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("vulkan:99 is not present") && stderr(&o).contains("flex (CPU"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn train_explain_and_gan_on_vulkan() {
    let Some(vk) = mammo_models::vulkan_for_tests() else {
        return;
    };
    eprintln!("vulkan device: {vk}");
    let dir = tempdir("vulkan");
    let data = dir.join("data");
    phantom(&data, 8, "200x260", 5, &["--conspicuity", "high"]);
    let out = dir.join("processed");
    let manifest = preprocess(&data, &out, 64);

    // One epoch of two folds on each device, from the same initialisation (drawn on the host).
    let train = |device: &str, run: &Path| {
        let t = std::time::Instant::now();
        let o = mammo(&[
            "train",
            "--manifest",
            s(&manifest),
            "--out",
            s(run),
            "--folds",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--lr",
            "1e-4",
            "--device",
            device,
            "--quiet",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "train on {device}: {}",
            stderr(&o)
        );
        eprintln!("train on {device}: {:.1} s", t.elapsed().as_secs_f64());
    };
    let (run_flex, run_vk) = (dir.join("run-flex"), dir.join("run-vulkan"));
    train("flex", &run_flex);
    train("vulkan", &run_vk);
    let (a, b) = (oof(&run_flex), oof(&run_vk));
    assert_eq!(a.len(), b.len());
    assert!(a.len() >= 24, "{} predictions", a.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| {
            assert_eq!(x.0, y.0);
            (x.1 - y.1).abs()
        })
        .fold(0f64, f64::max);
    eprintln!("out-of-fold probabilities, vulkan vs flex: max |diff| {worst:.2e}");
    assert!(
        worst <= 1e-3,
        "out-of-fold probabilities differ by {worst} between vulkan and flex"
    );

    // Explanations of the vulkan run, on vulkan.
    let ex = dir.join("explain");
    let o = mammo(&[
        "explain",
        "--run",
        s(&run_vk),
        "--manifest",
        s(&manifest),
        "--positives-only",
        "--out",
        s(&ex),
        "--method",
        "gradcam",
        "--device",
        "vulkan",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = std::fs::read_to_string(ex.join("explanations.csv")).unwrap();
    assert!(rows.lines().count() >= 2, "{rows}");

    // A tiny GAN stem on vulkan.
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..12u16 {
        let px: Vec<u16> = (0..32 * 32u16)
            .map(|k| if (k % 32) < 10 + i % 6 { 180 } else { 20 })
            .collect();
        mammo_image::write_png_gray(&images.join(format!("p{i}.png")), 32, 32, &px, 8).unwrap();
    }
    let gan = dir.join("tiny-gan.toml");
    std::fs::write(&gan, TINY_GAN).unwrap();
    let o = mammo(&[
        "gan",
        "train",
        "--images",
        s(&images),
        "--config",
        s(&gan),
        "--res",
        "16",
        "--out",
        s(&dir.join("g16")),
        "--device",
        "vulkan",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("done:") && text.contains("FID"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `configs/demo.toml`'s pipeline at toy scale: phantom data, the original and processed
/// stages, resnet18 at 64 px, LayerCAM explanations and the report.
fn tiny_experiment() -> String {
    format!(
        r#"
[experiment]
name = "vulkan test"
resolutions = [64]
stages = ["original", "processed"]
models = ["resnet18"]
{TINY_DATA_AND_TRAINING}[explain]
method = "layercam"
images = 4
figures = 1
"#
    )
}

/// `mammo experiment --device vulkan` end to end (every step of the demo's plan on the
/// device), and its Table 2 equal to the same experiment's on flex.
#[test]
fn experiment_on_vulkan_matches_flex() {
    let Some(vk) = mammo_models::vulkan_for_tests() else {
        return;
    };
    eprintln!("vulkan device: {vk}");
    let dir = tempdir("vulkan-experiment");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, tiny_experiment()).unwrap();
    let run = |device: &str| {
        let out = dir.join(format!("exp-{device}"));
        let t = std::time::Instant::now();
        let o = mammo(&[
            "experiment",
            "--config",
            s(&config),
            "--out",
            s(&out),
            "--device",
            device,
            "--quiet",
        ]);
        assert!(o.status.success(), "experiment on {device}: {}", stderr(&o));
        eprintln!("experiment on {device}: {:.1} s", t.elapsed().as_secs_f64());
        let csv = std::fs::read_to_string(out.join("report/table2_64.csv")).unwrap();
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    let flex = run("flex");
    let vulkan = run("vulkan");
    assert_eq!(flex.len(), 2, "{flex:?}");
    assert_eq!(flex.len(), vulkan.len());
    let mut worst = 0f64;
    for (a, b) in flex.iter().zip(&vulkan) {
        assert_eq!(a.len(), b.len());
        assert_eq!(a[..3], b[..3], "row keys");
        for (x, y) in a[3..].iter().zip(&b[3..]) {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => worst = worst.max((x - y).abs()),
                _ => assert_eq!(x, y, "a non-numeric Table 2 cell"),
            }
        }
    }
    eprintln!("Table 2, vulkan vs flex: max |diff| {worst:.2e}");
    assert!(
        worst <= 1e-3,
        "Table 2 differs by {worst}: flex {flex:?}, vulkan {vulkan:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
