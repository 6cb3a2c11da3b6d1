//! Writes deterministic FID Inception weights under pytorch-fid's keys, and the parity input
//! batch, as safetensors files for `tools/parity/fid_inception_parity.py` to run through
//! pytorch-fid.
//!
//! ```text
//! cargo run -p mammo-inception --example make_fid_inception_parity_weights -- \
//!     /tmp/mammo-fid-inception
//! ```
//!
//! The weights are a pure function of each key (`mammo_models::deterministic`), so the Rust
//! parity test rebuilds them from the norm gain and input shape the fixture records instead of
//! reading these files.

use std::path::PathBuf;

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use mammo_inception::FidInception;
use mammo_models::deterministic::{deterministic_input, fill_deterministic};

/// Multiplier on the batch-norm scales (`mammo_models::deterministic::tensor_values`). Found by
/// running pytorch-fid on these weights with the scales multiplied by each candidate (pool3
/// max |f|; largest difference between the two parity images relative to it): Inception has
/// no residual path, so the gain compounds over its ~20 sequential conv layers.
/// - 1.0: 0.30; 3e-6. The features no longer depend on the image.
/// - 1.6: 0.62; 6e-3.
/// - 1.8: 1.9; 0.04. Every block's output stays of order one (max 4.6, 4.1, 2.1, 1.9).
/// - 2.0: 26; 0.02. Activations start to grow (block 2 max 24).
/// - 2.2: 430; 0.03.
const NORM_GAIN: f32 = 1.8;

/// The parity input: 2 RGB images, 96 x 80, so the bilinear resize to 299 x 299 is exercised
/// in both directions of a non-square image.
const PARITY_INPUT: [usize; 4] = [2, 3, 96, 80];

fn main() {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp/mammo-fid-inception".into());
    std::fs::create_dir_all(&out)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));
    let device = Device::flex();

    let mut model = FidInception::new(&device);
    fill_deterministic(&mut model, NORM_GAIN);
    let path = out.join("fid_inception.safetensors");
    let mut store = SafetensorsStore::from_file(&path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .overwrite(true)
        .metadata("format", "pt")
        .metadata("mammo.norm_gain", NORM_GAIN.to_string());
    model
        .save_into(&mut store)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    println!("wrote {}", path.display());

    // deterministic_input is uniform in [-1, 1); the network takes [0, 1].
    let values: Vec<f32> = deterministic_input(PARITY_INPUT)
        .try_to_vec::<f32>()
        .expect("f32")
        .into_iter()
        .map(|u| (u + 1.0) / 2.0)
        .collect();
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
