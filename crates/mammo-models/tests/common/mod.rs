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

/// A registered model with deterministic weights (the same on every device).
pub fn det_model(name: &str, device: &Device) -> mammo_models::Model {
    let spec = mammo_models::spec(name).unwrap();
    let mut model = mammo_models::create_model(&test_config(name), device).unwrap();
    mammo_models::deterministic::fill_deterministic(
        &mut model,
        mammo_models::deterministic::norm_gain(&spec.arch),
    );
    model
}

/// The deterministic `[2, 1, TEST_SIZE, TEST_SIZE]` test input, scaled.
pub fn det_input(device: &Device, scale: f32) -> Tensor<4> {
    (tensor4(
        mammo_models::deterministic::deterministic_input([2, 1, TEST_SIZE, TEST_SIZE]),
        device,
    ) * scale)
        .detach()
}

/// Gradients of every float parameter, in module order.
pub struct GradCollector<'a> {
    pub grads: &'a burn::tensor::Gradients,
    pub out: Vec<(String, Vec<f32>)>,
}

impl burn::module::ModuleVisitor for GradCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let name = format!("param {} {:?}", self.out.len(), param.dims());
        let grad = param.val().grad(self.grads).map(values).unwrap_or_default();
        self.out.push((name, grad));
    }
}

/// What a training step produced.
pub struct Step {
    pub logits: Vec<f32>,
    pub input_grad: Vec<f32>,
    pub param_grads: Vec<(String, Vec<f32>)>,
    pub state: std::collections::BTreeMap<String, TensorData>,
}

/// A training step of `name` on `device` (made autodiff here) on the input scaled by
/// `1 + perturb`, with a loss whose gradient differs per logit.
pub fn train_step(name: &str, device: &Device, perturb: f32, tag: &str) -> Step {
    use burn::module::Module;
    use mammo_models::Classifier;
    let device = device.clone().autodiff();
    let model = det_model(name, &device);
    let x = det_input(&device, 1.0 + perturb).require_grad();
    let logits = model.forward(x.clone());
    let weights = Tensor::<2>::from_floats([[1.0], [-0.5]], &device);
    let grads = (logits.clone() * weights).sum().backward();
    let mut collector = GradCollector {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut collector);
    let path = scratch(&format!("{tag}-{name}.safetensors"));
    mammo_models::save_safetensors(&model, &test_config(name), &path).unwrap();
    Step {
        logits: values(logits),
        input_grad: values(x.grad(&grads).expect("input gradient")),
        param_grads: collector.out,
        state: read_safetensors(&path),
    }
}
