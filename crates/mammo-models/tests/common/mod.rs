//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

/// Side of the square test images: the smallest MaxViT accepts (window 2 = 64 / 32).
pub const TEST_SIZE: usize = 64;

/// The default config of `name`, built for [`TEST_SIZE`] input. Only MaxViT depends on the
/// input size (its attention window is `input_size / 32`); the convnets ignore it.
pub fn test_config(name: &str) -> mammo_models::ModelConfig {
    mammo_models::ModelConfig::new(name)
        .unwrap()
        .with_input_size([TEST_SIZE, TEST_SIZE])
}

/// A fresh path under cargo's per-target scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mammo-models");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Raw tensors for [`write_safetensors`]: key, little-endian bytes, dtype, shape.
pub struct Raw {
    pub key: String,
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Raw {
    pub fn f32(key: &str, data: &TensorData) -> Self {
        let values: Vec<f32> = data.try_to_vec().unwrap();
        Self {
            key: key.to_string(),
            dtype: safetensors::Dtype::F32,
            shape: data.shape().to_vec(),
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

/// Write tensors the way a Python `safetensors.torch.save_file` would, independent of burn.
pub fn write_safetensors(path: &Path, tensors: &[Raw]) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            (
                t.key.clone(),
                safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// Read every f32 tensor of a safetensors file, by key.
pub fn read_safetensors(path: &Path) -> std::collections::BTreeMap<String, TensorData> {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(key, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{key}");
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (key, TensorData::new(values, view.shape().to_vec()))
        })
        .collect()
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn tensor4(data: TensorData, device: &Device) -> Tensor<4> {
    Tensor::from_data(data, device)
}
