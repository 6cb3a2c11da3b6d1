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

/// [`det_model`] with every weight (not the batch-norm statistics) multiplied by `1 + rel * u`,
/// `u` uniform in [-1, 1) drawn from `seed` and the tensor's key.
pub fn det_model_perturbed(
    name: &str,
    device: &Device,
    rel: f32,
    seed: u64,
) -> mammo_models::Model {
    use mammo_models::deterministic::{
        deterministic_state_dict, fill_state_dict, norm_gain, uniform,
    };
    let spec = mammo_models::spec(name).unwrap();
    let mut model = mammo_models::create_model(&test_config(name), device).unwrap();
    let tensors = deterministic_state_dict(&model, norm_gain(&spec.arch))
        .into_iter()
        .map(|(key, data)| {
            if is_running_stat(&key) {
                return (key, data);
            }
            let shape = data.shape().to_vec();
            let v: Vec<f32> = data.try_to_vec().unwrap();
            let u = uniform(&format!("perturb {seed} {key}"), v.len());
            let v = v.iter().zip(u).map(|(x, u)| x * (1.0 + rel * u)).collect();
            (key, TensorData::new(v, shape))
        })
        .collect();
    fill_state_dict(&mut model, tensors);
    model
}

/// Whether a timm key names a batch norm's running mean or variance.
pub fn is_running_stat(key: &str) -> bool {
    key.ends_with("running_mean") || key.ends_with("running_var")
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

/// A change of a training step's inputs at the scale of f32 rounding.
#[derive(Debug, Clone, Copy)]
pub enum Perturb {
    /// The deterministic model and input as they are.
    None,
    /// The input scaled by `1 + rel`.
    Input(f32),
    /// Every weight scaled by `1 + rel * u`, `u` uniform in [-1, 1) ([`det_model_perturbed`]).
    Weights { rel: f32, seed: u64 },
}

/// Relative size of [`rounding_perturbations`]: about how far a convolution's f32 output moves
/// when its sums run in another order (a 3x3 convolution over 256 channels adds 2,304 products,
/// each sum rounded at 6e-8).
pub const ROUNDING_REL: f32 = 1e-6;

/// Perturbations that stand for another implementation's rounding: the input scaled by
/// `1 + ROUNDING_REL`, and the weights under eight draws of noise of that size.
///
/// Training gradients of the deeper test models are discontinuous at this scale: a ReLU whose
/// input lies within rounding of zero (resnet34 at 64 px has one at -1.5e-6 in `layer4.1`'s
/// first batch norm) takes the other branch under another summation order, and each such flip
/// moves the gradients of the layers below it by up to several percent. Two correct
/// implementations then differ by what flex differs from itself under these perturbations.
pub fn rounding_perturbations() -> Vec<Perturb> {
    std::iter::once(Perturb::Input(ROUNDING_REL))
        .chain((1..=8).map(|seed| Perturb::Weights {
            rel: ROUNDING_REL,
            seed,
        }))
        .collect()
}

/// Models whose training steps are compared without a rounding slack: their gradients are
/// continuous at rounding scale on the test input, and between them they run every fused path
/// (ReLU, identity and SiLU after batch norm, MaxViT's pre-norm, the squeeze-excite sigmoid).
pub const WELL_CONDITIONED: [&str; 3] = ["resnet18", "efficientnet_b0", "maxvit_nano_rw_256"];

/// `name`'s training steps on `device` under every [`rounding_perturbations`] entry; none for
/// the [`WELL_CONDITIONED`] models, which get no slack.
pub fn rounding_perturbed_steps(name: &str, device: &Device, tag: &str) -> Vec<Step> {
    if WELL_CONDITIONED.contains(&name) {
        return Vec::new();
    }
    rounding_perturbations()
        .into_iter()
        .map(|p| train_step(name, device, p, tag))
        .collect()
}

/// Twice the largest difference between `reference` and the same quantity of a perturbed step
/// (0 without perturbed steps): the slack of a comparison on a model whose gradients are
/// discontinuous at rounding scale (see [`rounding_perturbations`]).
pub fn rounding_slack(
    perturbed: &[Step],
    pick: impl Fn(&Step) -> Vec<f32>,
    reference: &[f32],
) -> f32 {
    perturbed
        .iter()
        .map(|s| 2.0 * max_abs_diff(&pick(s), reference))
        .fold(0.0, f32::max)
}

/// A training step of `name` on `device` (made autodiff here) under `perturb`, with a loss
/// whose gradient differs per logit.
pub fn train_step(name: &str, device: &Device, perturb: Perturb, tag: &str) -> Step {
    use burn::module::Module;
    use mammo_models::Classifier;
    let device = device.clone().autodiff();
    let (model, scale) = match perturb {
        Perturb::None => (det_model(name, &device), 1.0),
        Perturb::Input(rel) => (det_model(name, &device), 1.0 + rel),
        Perturb::Weights { rel, seed } => (det_model_perturbed(name, &device, rel, seed), 1.0),
    };
    let x = det_input(&device, scale).require_grad();
    let logits = model.forward(x.clone());
    let weights = Tensor::<2>::from_floats([[1.0], [-0.5]], &device);
    let grads = (logits.clone() * weights).sum().backward();
    let mut collector = GradCollector {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut collector);
    let path = scratch(&format!("{tag}-{name}.safetensors"));
    // burn 0.22.1's `RunningState` keeps a step's running-statistics update pending until the
    // next forward or `valid()`, and saving reads the merged value: `valid()` merges it.
    mammo_models::save_safetensors(&model.valid(), &test_config(name), &path).unwrap();
    let state = read_safetensors(&path);
    assert_running_stats_moved(name, &state);
    Step {
        logits: values(logits),
        input_grad: values(x.grad(&grads).expect("input gradient")),
        param_grads: collector.out,
        state,
    }
}

/// Every batch norm's running statistics in `state` differ from the deterministic ones: the
/// training step updated them, so comparing them compares the update.
fn assert_running_stats_moved(name: &str, state: &std::collections::BTreeMap<String, TensorData>) {
    use mammo_models::deterministic::{norm_gain, tensor_values};
    let gain = norm_gain(&mammo_models::spec(name).unwrap().arch);
    let running: Vec<&String> = state.keys().filter(|k| is_running_stat(k)).collect();
    let stale: Vec<&&String> = running
        .iter()
        .filter(|k| {
            let data = &state[k.as_str()];
            data.try_to_vec::<f32>().unwrap() == tensor_values(k, data.shape(), gain)
        })
        .collect();
    assert!(
        !running.is_empty() && stale.is_empty(),
        "{name}: {} of {} running statistics unchanged by the step, e.g. {:?}",
        stale.len(),
        running.len(),
        stale.first()
    );
}
