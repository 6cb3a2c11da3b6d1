//! Helpers shared by the `mammo` binary's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn mammo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mammo"))
        .args(args)
        .output()
        .expect("run mammo")
}

pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mammo-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A phantom set, preprocessed, and a run trained on it for one epoch (the plumbing, not
/// learning): `(phantom dir, run dir)`.
pub fn tiny_run(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    let o = mammo(&[
        "phantom",
        "--out",
        data.to_str().unwrap(),
        "--patients",
        "4",
        "--size",
        "200x260",
        "--prevalence",
        "0.5",
        "--seed",
        "5",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.join("processed");
    let o = mammo(&[
        "preprocess",
        "--csv",
        data.join("train.csv").to_str().unwrap(),
        "--images",
        data.join("train_images").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--flip-to",
        "left",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let run = dir.join("run");
    let o = mammo(&[
        "train",
        "--manifest",
        out.join("32/manifest.csv").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--folds",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    (data, run)
}

/// A GAN small enough to train in seconds on a CPU.
pub const TINY_GAN: &str = r#"
[generator]
z_dim = 16
w_dim = 32
cbase = 256
cmax = 16
syn_layers = 3
head_layers = 1
[discriminator]
backbone = "resnet18"
feature_res = 32
proj_channels = 8
disc_channels = 16
blur_fade_kimg = 0.05
[training]
batch_size = 4
kimg = 0.016
tick_kimg = 0.008
snap_kimg = 0.008
metric_kimg = 0.008
metric_samples = 8
kid_subsets = 3
kid_subset_size = 4
holdout_fraction = 0.25
grid = 2
"#;
