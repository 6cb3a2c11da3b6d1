//! Writes deterministic weights for every registered model, and the parity input batch, as
//! safetensors files under timm keys, for `tools/parity/timm_parity.py` to run through timm.
//!
//! ```text
//! cargo run -p mammo-models --example make_parity_weights -- /tmp/mammo-parity
//! ```
//!
//! The weights are a pure function of each key (see `mammo_models::deterministic`), so the
//! Rust parity test rebuilds them instead of reading these files.

use std::path::PathBuf;

use burn::tensor::Device;
use mammo_models::deterministic::{deterministic_input, fill_deterministic, norm_gain};
use mammo_models::{MODELS, ModelConfig, create_model, save_safetensors};

/// The parity input: batch 2, one channel, 64 x 64 (final feature map 2 x 2).
pub const PARITY_INPUT: [usize; 4] = [2, 1, 64, 64];

fn main() {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp/mammo-parity".into());
    std::fs::create_dir_all(&out)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));
    let device = Device::flex();
    for spec in MODELS {
        // Built for the parity input size: MaxViT's window is input_size / 32.
        let cfg = ModelConfig::new(spec.name)
            .expect("registered")
            .with_input_size([PARITY_INPUT[2], PARITY_INPUT[3]]);
        let mut model = create_model(&cfg, &device).expect("default config is valid");
        fill_deterministic(&mut model, norm_gain(&spec.arch));
        let path = out.join(format!("{}.safetensors", spec.name));
        save_safetensors(&model, &cfg, &path).unwrap_or_else(|e| panic!("{e}"));
        println!("wrote {}", path.display());
    }

    let input = deterministic_input(PARITY_INPUT);
    let values: Vec<f32> = input.try_to_vec().expect("f32");
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        PARITY_INPUT.to_vec(),
        &bytes,
    )
    .expect("consistent view");
    let path = out.join("input.safetensors");
    let file = safetensors::serialize([("input", view)], None).expect("serialise input");
    std::fs::write(&path, file).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    println!("wrote {}", path.display());
}
