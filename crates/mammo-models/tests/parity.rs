//! Parity with timm: every registered model, filled with the deterministic weights of
//! `mammo_models::deterministic`, must reproduce timm's last feature map and logits on the
//! fixed input to within 1e-4 (max absolute difference, f32). MaxViT fixtures also hold the
//! map after its first stage (`stage0`), checked to the same tolerance.
//!
//! The expected values were computed by timm (`tools/parity/timm_parity.py`, versions in each
//! fixture's metadata) from weights written by the `make_parity_weights` example; this test
//! needs neither Python nor those weight files.

mod common;

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Tensor};
use mammo_models::deterministic::{deterministic_input, fill_deterministic, norm_gain};
use mammo_models::layers::{Padding, tf_same_padding};
use mammo_models::{Classifier, MODELS, Model, ModelConfig, create_model};

use common::{max_abs_diff, read_safetensors, tensor4, values};

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parity")
        .join(format!("{name}.safetensors"))
}

#[test]
fn every_model_matches_timm() {
    let device = Device::flex();
    let mut failures = Vec::new();
    for spec in MODELS {
        let expected = read_safetensors(&fixture(spec.name));
        let [_, _, h, w] = expected["input"].shape().to_vec()[..] else {
            panic!("{}: parity input is not NCHW", spec.name)
        };
        let cfg = ModelConfig::new(spec.name).unwrap().with_input_size([h, w]);
        let mut model = create_model(&cfg, &device).unwrap();
        fill_deterministic(&mut model, norm_gain(&spec.arch));
        let model = model.valid();

        let x = tensor4(expected["input"].clone(), &device);
        let features = model.forward_features(x);
        assert_eq!(
            features.shape().to_vec(),
            expected["features"].shape().to_vec(),
            "{}",
            spec.name
        );
        let logits = model.forward_head(features.clone());

        let want_f: Vec<f32> = expected["features"].try_to_vec().unwrap();
        let want_l: Vec<f32> = expected["logits"].try_to_vec().unwrap();
        let diff_f = max_abs_diff(&values(features), &want_f);
        let got_l = values(logits);
        let diff_l = max_abs_diff(&got_l, &want_l);
        let scale = want_f.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        eprintln!(
            "{}: max |features| {scale:.3}, features diff {diff_f:.2e}, logits {got_l:?} vs timm \
             {want_l:?}, diff {diff_l:.2e}",
            spec.name
        );
        // MaxViT fixtures also hold the map after the first stage, an early intermediate.
        if let (Some(want), Model::MaxVit(m)) = (expected.get("stage0"), &model) {
            let got = m.forward_stages(tensor4(expected["input"].clone(), &device), 1);
            assert_eq!(got.shape().to_vec(), want.shape().to_vec(), "{}", spec.name);
            let diff = max_abs_diff(&values(got), &want.try_to_vec::<f32>().unwrap());
            eprintln!("{}: stage0 diff {diff:.2e}", spec.name);
            if diff.is_nan() || diff > TOLERANCE {
                failures.push(format!("{}: stage0 diff {diff:e}", spec.name));
            }
        }
        if !(diff_f <= TOLERANCE && diff_l <= TOLERANCE) {
            failures.push(format!(
                "{}: features diff {diff_f:e}, logits diff {diff_l:e}",
                spec.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "parity with timm above {TOLERANCE}: {failures:#?}"
    );
}

/// TensorFlow "SAME" as timm computes it (`get_same_padding`, `pad_same`), hand-checked: the
/// odd pixel goes after.
#[test]
fn tf_same_padding_matches_timm() {
    // (size, kernel, stride) -> (before, after)
    let cases = [
        ((64, 3, 2), (0, 1)), // (32 - 1) * 2 + 3 - 64 = 1
        ((16, 5, 2), (1, 2)), // (8 - 1) * 2 + 5 - 16 = 3
        ((7, 3, 2), (1, 1)),  // (4 - 1) * 2 + 3 - 7 = 2
        ((7, 5, 2), (2, 2)),  // (4 - 1) * 2 + 5 - 7 = 4
        ((9, 5, 1), (2, 2)),  // stride 1: (k - 1) / 2 each side
        ((2, 5, 2), (1, 2)),  // (1 - 1) * 2 + 5 - 2 = 3
        ((5, 1, 1), (0, 0)),
    ];
    for ((size, k, s), want) in cases {
        assert_eq!(tf_same_padding(size, k, s), want, "size {size} k {k} s {s}");
    }
}

/// The tf_ models' convolutions use burn's `Same`, which must pad exactly as
/// [`tf_same_padding`] says for every input size, odd or even, at strides 1 and 2.
#[test]
fn burn_same_convolution_is_tf_same() {
    let device = Device::flex();
    for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
        for (h, w) in [(7, 8), (16, 15), (9, 9)] {
            let conv = Conv2dConfig::new([2, 3], [k, k])
                .with_stride([s, s])
                .with_padding(Padding::TfSame.config(k, s))
                .init(&device);
            let (top, bottom) = tf_same_padding(h, k, s);
            let (left, right) = tf_same_padding(w, k, s);
            let explicit = burn::nn::conv::Conv2d {
                padding: PaddingConfig2d::Explicit(top, left, bottom, right),
                ..conv.clone()
            };
            let x: Tensor<4> = tensor4(deterministic_input([1, 2, h, w]), &device);
            let same = conv.forward(x.clone()); // [1, 3, ceil(h/s), ceil(w/s)]
            assert_eq!(same.dims(), [1, 3, h.div_ceil(s), w.div_ceil(s)]);
            let diff = max_abs_diff(&values(same), &values(explicit.forward(x)));
            assert_eq!(diff, 0.0, "k {k} s {s} input {h}x{w}");
        }
    }
}
