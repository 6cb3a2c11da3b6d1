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

/// A scratch folder, removed when dropped unless its test is failing (then it stays, for a
/// look at what the run left).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// An empty scratch folder `mammo-cli-TAG-PID` under the system temp dir.
pub fn tempdir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("mammo-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `mammo phantom` into `data`: `patients` patients of `size` (WIDTHxHEIGHT), half with a
/// cancer, seeded, plus any `extra` flags; asserts success.
pub fn phantom(data: &Path, patients: usize, size: &str, seed: u64, extra: &[&str]) {
    let (patients, seed) = (patients.to_string(), seed.to_string());
    let mut args = vec![
        "phantom",
        "--out",
        data.to_str().unwrap(),
        "--patients",
        &patients,
        "--size",
        size,
        "--prevalence",
        "0.5",
        "--seed",
        &seed,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = mammo(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `mammo preprocess` of the phantom set in `data` into `out` at one square `size`, chest
/// walls to the left; asserts exit 0 and returns the manifest's path.
pub fn preprocess(data: &Path, out: &Path, size: u32) -> PathBuf {
    let o = mammo(&[
        "preprocess",
        "--csv",
        data.join("train.csv").to_str().unwrap(),
        "--images",
        data.join("train_images").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        &size.to_string(),
        "--flip-to",
        "left",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    out.join(size.to_string()).join("manifest.csv")
}

/// A phantom set, preprocessed, and a run trained on it for one epoch (the plumbing, not
/// learning): `(phantom dir, run dir)`.
pub fn tiny_run(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    phantom(&data, 4, "200x260", 5, &[]);
    let manifest = preprocess(&data, &dir.join("processed"), 32);
    let run = dir.join("run");
    let o = mammo(&[
        "train",
        "--manifest",
        manifest.to_str().unwrap(),
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

/// The `[phantom]` and `[train]` sections the test experiments run with: 12 phantom
/// patients with obvious lesions, 2 folds of 1 epoch.
pub const TINY_DATA_AND_TRAINING: &str = r#"
[phantom]
patients = 12
seed = 1
prevalence = 0.5
conspicuity = "obvious"
[train]
folds = 2
epochs = 1
batch_size = 8
lr = 1e-3
"#;

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

/// A headless Chromium, if one is installed (Debian package `chromium`).
pub fn browser() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}
