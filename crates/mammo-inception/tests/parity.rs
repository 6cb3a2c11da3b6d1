//! Parity with pytorch-fid: the FID Inception filled with the deterministic weights of
//! `mammo_models::deterministic` must reproduce what pytorch-fid's `InceptionV3()` computes
//! from the same weights and input (2 images of 96 x 80, resized inside to 299 x 299).
//!
//! The expected values were computed by pytorch-fid (`tools/parity/fid_inception_parity.py`,
//! versions in the fixture) from weights written by the `make_fid_inception_parity_weights`
//! example; this test needs neither Python nor those files: it rebuilds the weights from the
//! norm gain the fixture records. The fixture is a summary, to stay a few KB: every 8th pool3
//! feature and three statistics over all 2048, and slices of the first Inception block's output
//! (Mixed_5b), which checks the resize, the stem and an average pool without the padding early.
//!
//! Tolerance: max absolute difference <= 1e-4 x max(1, max |expected|) of the compared block
//! (an f32 network of ~50 layers, where PyTorch and burn sum in different orders; the features
//! here reach 1.9, Mixed_5b 4.0); the mean, L2 norm and projection of the 2048 features are each
//! held to 1e-4 x max(1, |expected value|). Observed with pytorch-fid 0.3.0 / torch 2.15:
//! 1.4e-6 on the pool3 features, 1.2e-5 on Mixed_5b.

mod common;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use mammo_inception::{Block, FEATURE_DIM, FidInception, preprocess};
use mammo_models::deterministic::fill_deterministic;
use serde::Deserialize;

use common::{parity_input, values};

const TOLERANCE: f64 = 1e-4;

#[derive(Deserialize)]
struct Fixture {
    versions: serde_json::Value,
    norm_gain: f32,
    input: Input,
    pool3: Pool3,
    mixed_5b: Mixed5b,
}

#[derive(Deserialize)]
struct Input {
    shape: [usize; 4],
    sum: f64,
}

#[derive(Deserialize)]
struct Pool3 {
    shape: [usize; 2],
    stride: usize,
    values: Vec<Vec<f64>>,
    mean: Vec<f64>,
    l2: Vec<f64>,
    projection: Vec<f64>,
    max_abs: f64,
}

#[derive(Deserialize)]
struct Mixed5b {
    shape: [usize; 4],
    channel_stride: usize,
    channel_means: Vec<Vec<f64>>,
    channels: Vec<usize>,
    rows: Vec<usize>,
    image0_rows: Vec<Vec<Vec<f64>>>,
    max_abs: f64,
}

fn fixture() -> Fixture {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fid_inception_parity.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Largest `|a - b|` over pairs, NaN if any value is NaN or the lengths differ.
fn max_abs_diff(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::NAN;
    }
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, |m, d| {
            if d.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(d)
            }
        })
}

/// Collects `name: diff` failures above `bound` (NaN fails).
struct Checks {
    failures: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: &str, got: &[f64], want: &[f64], bound: f64) {
        let diff = max_abs_diff(got, want);
        eprintln!("{name}: max abs diff {diff:.3e} (bound {bound:.1e})");
        if diff.is_nan() || diff > bound {
            self.failures
                .push(format!("{name}: max abs diff {diff:e} > {bound:e}"));
        }
    }
}

#[test]
fn pool3_and_mixed_5b_match_pytorch_fid() {
    let fx = fixture();
    eprintln!("fixture versions: {}", fx.versions);
    let device = Device::flex();
    let mut model = FidInception::new(&device);
    fill_deterministic(&mut model, fx.norm_gain);

    let input = parity_input(fx.input.shape);
    let sum: f64 = input.iter::<f32>().map(f64::from).sum();
    assert!(
        (sum - fx.input.sum).abs() <= 1e-6 * fx.input.sum.abs(),
        "the parity input differs from the one pytorch-fid saw: sum {sum} vs {}",
        fx.input.sum
    );
    let images: Tensor<4> = Tensor::from_data(input, &device);
    let mut checks = Checks {
        failures: Vec::new(),
    };

    // The first Inception block, from the public pieces: resize + block 0 + block 1 + Mixed_5b.
    let x = preprocess(images.clone());
    let x = model.forward_block(Block::MaxPool1, x);
    let x = model.forward_block(Block::MaxPool2, x);
    let mixed = model.Mixed_5b.forward(x); // [N, 256, 35, 35]
    let m = &fx.mixed_5b;
    assert_eq!(mixed.dims(), m.shape);
    let [n, c, h, w] = m.shape;
    let bound = TOLERANCE * m.max_abs.max(1.0);
    let mixed_values: Vec<f64> = values(mixed).into_iter().map(f64::from).collect();
    let at = |b: usize, ch: usize, y: usize, x: usize| mixed_values[((b * c + ch) * h + y) * w + x];
    for b in 0..n {
        let means: Vec<f64> = (0..c)
            .step_by(m.channel_stride)
            .map(|ch| (0..h * w).map(|i| at(b, ch, i / w, i % w)).sum::<f64>() / (h * w) as f64)
            .collect();
        checks.check(
            &format!("mixed_5b channel means, image {b}"),
            &means,
            &m.channel_means[b],
            bound,
        );
    }
    for (ch, rows) in m.channels.iter().zip(&m.image0_rows) {
        for (y, want) in m.rows.iter().zip(rows) {
            let got: Vec<f64> = (0..w).map(|x| at(0, *ch, *y, x)).collect();
            checks.check(
                &format!("mixed_5b image 0 channel {ch} row {y}"),
                &got,
                want,
                bound,
            );
        }
    }

    // The whole network through the public entry point.
    let pool3 = model.pool3(images); // [N, 2048]
    let p = &fx.pool3;
    assert_eq!(pool3.dims(), p.shape);
    assert_eq!(p.shape[1], FEATURE_DIM);
    let bound = TOLERANCE * p.max_abs.max(1.0);
    let features: Vec<f64> = values(pool3).into_iter().map(f64::from).collect();
    for (b, row) in features.chunks(FEATURE_DIM).enumerate() {
        let slice: Vec<f64> = row.iter().step_by(p.stride).copied().collect();
        checks.check(
            &format!("pool3 image {b}, every {}th", p.stride),
            &slice,
            &p.values[b],
            bound,
        );
        let mean = row.iter().sum::<f64>() / FEATURE_DIM as f64;
        checks.check(
            &format!("pool3 image {b} mean"),
            &[mean],
            &[p.mean[b]],
            bound,
        );
        let l2 = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        checks.check(
            &format!("pool3 image {b} L2"),
            &[l2],
            &[p.l2[b]],
            TOLERANCE * p.l2[b].abs().max(1.0),
        );
        // w_k = ((k * 7919) mod 2048) / 2048 - 0.5, as the script computes it.
        let projection: f64 = row
            .iter()
            .enumerate()
            .map(|(k, v)| v * (((k * 7919) % FEATURE_DIM) as f64 / FEATURE_DIM as f64 - 0.5))
            .sum();
        let proj_bound = TOLERANCE * p.projection[b].abs().max(1.0);
        checks.check(
            &format!("pool3 image {b} projection"),
            &[projection],
            &[p.projection[b]],
            proj_bound,
        );
    }
    assert!(
        checks.failures.is_empty(),
        "parity with pytorch-fid (tolerance {TOLERANCE:e} relative to max(1, scale)): {:#?}",
        checks.failures
    );
}

/// pytorch-fid's average pool leaves the padding out of the count (`count_include_pad=False`):
/// on a 3 x 3 image of 1..9 the corner averages 4 pixels, the edge 6, the centre 9.
#[test]
fn average_pool_excludes_padding() {
    let device = Device::flex();
    let x: Tensor<4> = Tensor::from_data(
        burn::tensor::TensorData::new((1..=9).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 3, 3]),
        &device,
    );
    let got = values(mammo_inception::blocks::avg_pool_3x3_exclude_pad(x));
    let want = [
        (1 + 2 + 4 + 5) as f32 / 4.0,
        (1 + 2 + 3 + 4 + 5 + 6) as f32 / 6.0,
        (2 + 3 + 5 + 6) as f32 / 4.0,
        (1 + 2 + 4 + 5 + 7 + 8) as f32 / 6.0,
        45.0 / 9.0,
        (2 + 3 + 5 + 6 + 8 + 9) as f32 / 6.0,
        (4 + 5 + 7 + 8) as f32 / 4.0,
        (4 + 5 + 6 + 7 + 8 + 9) as f32 / 6.0,
        (5 + 6 + 8 + 9) as f32 / 4.0,
    ];
    assert_eq!(got, want);
}

/// The resize uses half-pixel centres (`align_corners=False`): a 2-pixel ramp [0, 1] widened
/// to 4 pixels is [0, 0.25, 0.75, 1] (with corner alignment it would be [0, 1/3, 2/3, 1]).
/// Checked through burn's interpolate directly at a small size, then [`preprocess`]'s output
/// size and scaling on a constant image.
#[test]
fn resize_uses_half_pixel_centres() {
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    let device = Device::flex();
    let ramp: Tensor<4> = Tensor::from_data(
        burn::tensor::TensorData::new(vec![0.0f32, 1.0], [1, 1, 1, 2]),
        &device,
    );
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(false)
        .with_output_size([1, 4]);
    assert_eq!(values(interpolate(ramp, options)), [0.0, 0.25, 0.75, 1.0]);

    let grey: Tensor<4> = Tensor::full([1, 3, 5, 7], 0.25, &device);
    let x = preprocess(grey);
    assert_eq!(x.dims(), [1, 3, 299, 299]);
    // Bilinear weights that sum to 1 in f32 up to rounding: 2 * 0.25 - 1 within 1e-6.
    assert!(values(x).iter().all(|&v| (v + 0.5).abs() <= 1e-6));
}
