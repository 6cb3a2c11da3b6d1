//! Deterministic weights and inputs for parity tests against timm.
//!
//! Every value is a function of the tensor's timm key and its element index only (FNV-1a of the
//! key seeds a SplitMix64 stream), so the same model gets bit-identical weights on every run
//! and platform without storing them. The `make_parity_weights` example writes them to a
//! safetensors file that `tools/parity/timm_parity.py` loads into timm.
//!
//! The scales keep activations of order one through deep stacks with batch norm in eval mode:
//! conv weights are uniform with variance 2/fan_in (He), linear 1/fan_in, norm scales positive
//! with mean 0.5 times an architecture's [`norm_gain`], running variances in [0.5, 1.5].

use burn::module::Module;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, bridge};
use burn::tensor::TensorData;

use crate::registry::Arch;
use crate::weights::timm_keys;

/// Multiplier on the norm scales that keeps `arch`'s eval-mode activations of order one *and*
/// dependent on the input, so a parity test sees every layer.
///
/// Found by running timm on these weights (`tools/parity/timm_parity.py` prints the logits of
/// the two parity images, which must differ):
/// - ResNet, 1.0: the residual sums carry the signal; larger scales make it grow with depth.
/// - EfficientNet with squeeze-excite (B0), 2.2: at 1.0 the image is forgotten within two
///   blocks (no identity path where a stage starts, a sigmoid gate near 0.5 in every block;
///   timm's features of the two images then differ by 2e-8); at 2.4 activations explode.
/// - EfficientNet without squeeze-excite (Lite0), 1.6: from 2.0 on, ReLU6 saturates and f32
///   rounding is amplified to 1e-4.
/// - MaxViT, 1.0: every block and half-block is residual (an average-pool shortcut where a
///   stage starts) with a norm in front; timm's final features of the two images differ by
///   0.74 at this gain.
pub fn norm_gain(arch: &Arch) -> f32 {
    match arch {
        Arch::ResNet(_) => 1.0,
        Arch::EfficientNet(a) if a.se_ratio > 0.0 => 2.2,
        Arch::EfficientNet(_) => 1.6,
        Arch::MaxVit(_) => 1.0,
    }
}

/// FNV-1a 64-bit hash of a key.
fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 (Steele, Lea, Flood 2014), one output per call.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` values uniform in [-1, 1), each exactly representable in f32 (24-bit mantissa).
pub fn uniform(seed_key: &str, n: usize) -> Vec<f32> {
    let mut state = fnv1a(seed_key);
    (0..n)
        .map(|_| {
            let bits = (splitmix64(&mut state) >> 40) as f32; // [0, 2^24)
            bits / 8_388_608.0 - 1.0 // [-1, 1)
        })
        .collect()
}

/// Deterministic values for one tensor given its timm key and PyTorch-layout shape; norm
/// scales are multiplied by `norm_gain` ([`norm_gain`]).
pub fn tensor_values(key: &str, shape: &[usize], norm_gain: f32) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let u = uniform(key, n);
    let leaf = key.rsplit('.').next().unwrap_or("");
    let map = |f: &dyn Fn(f32) -> f32| u.iter().map(|&v| f(v)).collect();
    match (leaf, shape.len()) {
        ("running_var", _) => map(&|v| 1.0 + 0.5 * v),
        ("running_mean", _) => map(&|v| 0.1 * v),
        // Norm scale: positive, mean 0.5 * norm_gain.
        ("weight", 1) => map(&|v| norm_gain * (0.5 + 0.25 * v)),
        ("bias", 1) => map(&|v| 0.05 * v),
        // Conv weight: variance 2 / fan_in (He); linear weight: variance 1 / fan_in.
        ("weight", rank) => {
            let fan_in: usize = shape[1..].iter().product();
            let gain = if rank == 4 { 2.0 } else { 1.0 };
            let a = (3.0 * gain / fan_in as f32).sqrt();
            map(&|v| a * v)
        }
        _ => map(&|v| 0.1 * v),
    }
}

/// Every tensor of `model` under its timm key, with deterministic values in PyTorch layout.
pub fn deterministic_state_dict<M: Module>(model: &M, norm_gain: f32) -> Vec<(String, TensorData)> {
    timm_keys(model)
        .into_iter()
        .map(|(key, shape)| {
            let values = tensor_values(&key, &shape, norm_gain);
            (key, TensorData::new(values, shape))
        })
        .collect()
}

/// Overwrite every parameter and batch-norm statistic of `model` with deterministic values.
pub fn fill_deterministic<M: Module>(model: &mut M, norm_gain: f32) {
    let tensors = deterministic_state_dict(model, norm_gain);
    fill_state_dict(model, tensors);
}

/// Overwrite every parameter and batch-norm statistic of `model` with `tensors` (timm keys,
/// PyTorch layout, as [`deterministic_state_dict`] gives them), which must cover it exactly.
pub fn fill_state_dict<M: Module>(model: &mut M, tensors: Vec<(String, TensorData)>) {
    let tensors = tensors
        .into_iter()
        .map(|(key, data)| bridge::from_data(data, key, None))
        .collect();
    let result = model.apply(tensors, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    assert!(
        result.errors.is_empty() && result.missing.is_empty() && result.unused.is_empty(),
        "deterministic fill must cover the model exactly: {result}"
    );
}

/// A deterministic input batch in [-1, 1), NCHW.
pub fn deterministic_input(shape: [usize; 4]) -> TensorData {
    TensorData::new(uniform("input", shape.iter().product()), shape)
}
