//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};

/// A fresh path under cargo's per-target scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mammo-inception");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// One tensor for [`write_safetensors`]: key, dtype, shape, little-endian bytes.
pub struct Raw {
    pub key: String,
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Raw {
    pub fn f32(key: &str, shape: &[usize], values: &[f32]) -> Self {
        Self {
            key: key.to_string(),
            dtype: safetensors::Dtype::F32,
            shape: shape.to_vec(),
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn i64_scalar(key: &str, value: i64) -> Self {
        Self {
            key: key.to_string(),
            dtype: safetensors::Dtype::I64,
            shape: vec![],
            bytes: value.to_le_bytes().to_vec(),
        }
    }
}

/// Write tensors as Python's `safetensors.torch.save_file` would, independent of burn.
pub fn write_safetensors(path: &Path, tensors: &[Raw]) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            let view = safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .expect("consistent view");
            (t.key.clone(), view)
        })
        .collect();
    let bytes = safetensors::serialize(views, None).expect("serialise");
    std::fs::write(path, bytes).unwrap();
}

/// The values of a tensor as f32.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().unwrap()
}

/// The deterministic parity input in [0, 1]: `(deterministic_input(shape) + 1) / 2`.
pub fn parity_input(shape: [usize; 4]) -> TensorData {
    let values: Vec<f32> = mammo_models::deterministic::deterministic_input(shape)
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(|u| (u + 1.0) / 2.0)
        .collect();
    TensorData::new(values, shape)
}
