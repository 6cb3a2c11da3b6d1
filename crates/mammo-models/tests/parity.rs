//! Parity with timm: every registered model, filled with the deterministic weights of
//! `mammo_models::deterministic`, must reproduce timm's last feature map and logits on the
//! fixed input to within 1e-4 (max absolute difference, f32).
//!
//! The expected values were computed by timm (`tools/parity/timm_parity.py`, versions in each
//! fixture's metadata) from weights written by the `make_parity_weights` example; this test
//! needs neither Python nor those weight files.

mod common;

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::Device;
use mammo_models::deterministic::fill_deterministic;
use mammo_models::{Classifier, MODELS, ModelConfig, create_model};

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
        let mut model = create_model(&ModelConfig::new(spec.name).unwrap(), &device).unwrap();
        fill_deterministic(&mut model);
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
            "{}: max |features| {scale:.3}, features diff {diff_f:.2e}, logits {got_l:?} vs timm {want_l:?}, diff {diff_l:.2e}",
            spec.name
        );
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
