//! The GAN on a Vulkan device (lavapipe on CI) against flex, from the same weights: one
//! discriminator step (hinge loss on real and generated images) and one generator step, each
//! compared by its loss and every gradient; and the FID/KID feature network's features (the
//! end-to-end `mammo gan train --device vulkan` is in mammo-cli's vulkan test). Noise inputs
//! are off so both devices see the same function. Runs only with `MAMMO_TEST_VULKAN=1`.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use mammo_gan::discriminator::ProjectedDiscriminator;
use mammo_gan::layers::Noise;
use mammo_gan::{FeatureNet, Generator, GeneratorArch};
use mammo_models::{VulkanTier, vulkan_for_tests, vulkan_for_tests_at};

mod common;

use common::tiny;

/// Deterministic values in [-1, 1].
fn wave(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * k).sin() * 0.9).collect()
}

struct Grads<'a> {
    grads: &'a burn::tensor::Gradients,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(
            param
                .val()
                .grad(self.grads)
                .map(|g| g.into_data().convert::<f32>().try_into_vec().unwrap())
                .unwrap_or_default(),
        );
    }
}

/// Loss value and the gradients of every parameter of `module`.
fn grads_of<M: Module>(loss: Tensor<1>, module: &M) -> (f32, Vec<Vec<f32>>) {
    let value: f32 = loss.clone().into_scalar();
    let grads = loss.backward();
    let mut v = Grads {
        grads: &grads,
        out: Vec::new(),
    };
    module.visit(&mut v);
    (value, v.out)
}

/// One discriminator step's and one generator step's losses and gradients on `device`.
fn steps(
    g: &Generator,
    d: &ProjectedDiscriminator,
    z_dim: usize,
    device: &Device,
) -> [(f32, Vec<Vec<f32>>); 2] {
    // `fork`, not `to_device`: on an autodiff device `to_device` is a tracked copy, whose
    // output is not a leaf, so the parameters would get no gradients of their own.
    let (g, d) = (g.clone().fork(device), d.clone().fork(device));
    let b = 4;
    let z = || Tensor::<2>::from_data(TensorData::new(wave(b * z_dim, 0.37), [b, z_dim]), device);
    let res = g.forward(z(), 1.0, Noise::Off).dims()[2];
    let real = Tensor::<4>::from_data(
        TensorData::new(wave(b * res * res, 0.011), [b, 1, res, res]),
        device,
    );
    let fake = g.forward(z(), 1.0, Noise::Off).detach();
    let loss_d = relu(-d.forward(real) + 1.0).mean() + relu(d.forward(fake) + 1.0).mean();
    let d_step = grads_of(loss_d, &d);
    // The generator step runs through an untracked copy of the discriminator (burn has no
    // retain_graph; the trainer's generator step sees the stepped discriminator's new tensors).
    let d = d.no_grad();
    let fake = g.synthesis(g.mapping.forward(z(), 1.0), Noise::Off);
    let loss_g = -d.forward(fake).mean();
    let g_step = grads_of(loss_g, &g);
    [d_step, g_step]
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}

#[test]
fn gan_steps_and_features_match_flex_on_vulkan() {
    let Some(vk) = vulkan_for_tests() else { return };
    let cfg = tiny();
    let flex = Device::flex().autodiff();
    flex.seed(7);
    let g = Generator::new(&GeneratorArch::stem(&cfg.generator), &flex);
    let d = ProjectedDiscriminator::new(&cfg, &flex).unwrap();
    let z_dim = cfg.generator.z_dim;
    let want = steps(&g, &d, z_dim, &flex);
    let got = steps(&g, &d, z_dim, &vk.device.clone().autodiff());
    for (what, (w, o)) in ["discriminator", "generator"]
        .iter()
        .zip(want.iter().zip(&got))
    {
        assert!(
            (w.0 - o.0).abs() <= 1e-4 * w.0.abs().max(1.0),
            "{what} loss: {} on vulkan, {} on flex",
            o.0,
            w.0
        );
        assert_eq!(w.1.len(), o.1.len(), "{what}: parameter count");
        let mut compared = 0;
        let mut worst = 0f32;
        let mut failures = Vec::new();
        for (i, (a, b)) in o.1.iter().zip(&w.1).enumerate() {
            assert_eq!(
                a.is_empty(),
                b.is_empty(),
                "{what} param {i}: gradient presence"
            );
            if b.is_empty() {
                continue;
            }
            let r = max_rel_diff(a, b);
            if r > 1e-3 {
                let largest = |v: &[f32]| v.iter().fold(0f32, |m, x| m.max(x.abs()));
                // Which entries differ: a few far off with the rest equal points at a kink (a
                // ReLU or hinge whose input sits near zero on one device and across it on the
                // other), a uniform scale at a wrong kernel.
                let tol = 1e-3 * largest(b);
                let off: Vec<String> = a
                    .iter()
                    .zip(b)
                    .enumerate()
                    .filter(|(_, (x, y))| (*x - *y).abs() > tol)
                    .map(|(k, (x, y))| format!("[{k}] vulkan {x:.3e} flex {y:.3e}"))
                    .collect();
                failures.push(format!(
                    "param {i} ({} values): max diff {r:.2e} of its largest value; largest |grad| \
                     flex {:.3e}, vulkan {:.3e}; {} entries off: {}",
                    b.len(),
                    largest(b),
                    largest(a),
                    off.len(),
                    off.iter().take(6).cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            worst = worst.max(r);
            compared += 1;
        }
        assert!(
            failures.is_empty(),
            "{what}: {} of {compared} gradients differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(compared >= 4, "{what}: only {compared} gradients");
        eprintln!(
            "{what} step: loss {} vs {}, {compared} gradients, worst relative diff {worst:.1e}",
            o.0, w.0
        );
    }

    // FID/KID features: a classifier's pooled features from a weights file, on both devices.
    let dir = std::env::temp_dir().join(format!("mammo-gan-vulkan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("resnet18.safetensors");
    let model_cfg = mammo_models::ModelConfig::new("resnet18")
        .unwrap()
        .with_in_chans(1);
    let mut m = mammo_models::create_model(&model_cfg, &Device::flex()).unwrap();
    mammo_models::deterministic::fill_deterministic(&mut m, 1.0);
    mammo_models::save_safetensors(&m, &model_cfg, &weights).unwrap();
    let images = wave(6 * 32 * 32, 0.013);
    let feats = |device: &Device| {
        FeatureNet::by_name("resnet18", Some(&weights), device)
            .unwrap()
            .features_of(&images, [6, 1, 32, 32], 4, device)
    };
    let (a, b) = (feats(&vk.device), feats(&Device::flex()));
    let r = max_rel_diff(&a, &b);
    eprintln!(
        "feature network: {} features, worst relative diff {r:.1e}",
        a.len()
    );
    assert!(r <= 1e-4, "FID features: max diff {r} of the largest");
    std::fs::remove_dir_all(&dir).ok();
}

/// The discriminator's top-down resize (bilinear upsampling by matrix products off flex, burn's
/// interpolate on flex), forward and input gradient, on vulkan against flex.
#[test]
fn feature_resize_matches_flex_on_vulkan() {
    use mammo_gan::layers::resize;
    let Some(vk) = vulkan_for_tests() else { return };
    let flex = Device::flex().autodiff();
    let vk = vk.device.clone().autodiff();
    let run = |device: &Device, from: usize, to: usize| -> [Vec<f32>; 2] {
        let x = Tensor::<4>::from_data(
            TensorData::new(wave(2 * 3 * from * from, 0.17), [2, 3, from, from]),
            device,
        )
        .require_grad();
        let y = resize(x.clone(), [to, to]);
        let c = Tensor::<4>::from_data(
            TensorData::new(wave(2 * 3 * to * to, 0.41), [2, 3, to, to]),
            device,
        );
        let fwd = y
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let g = (y * c).sum().backward();
        let dx = x
            .grad(&g)
            .unwrap()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        [fwd, dx]
    };
    let mut failures = Vec::new();
    for (from, to) in [(2, 4), (4, 8), (8, 16), (3, 8)] {
        let (want, got) = (run(&flex, from, to), run(&vk, from, to));
        for (what, (w, o)) in ["forward", "input gradient"]
            .iter()
            .zip(want.iter().zip(&got))
        {
            let r = max_rel_diff(o, w);
            eprintln!("{from} -> {to}: {what}: max relative diff {r:.2e}");
            if r > 1e-4 {
                failures.push(format!("{from} -> {to}: {what}: {r:.2e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("; "));
}

/// The discriminator's logits (every scale and position), forward only, on vulkan against
/// flex from the same weights: where the gradients of a step differ, this tells whether the
/// forward already does.
#[test]
fn discriminator_logits_match_flex_on_vulkan() {
    let Some(vk) = vulkan_for_tests() else { return };
    let cfg = tiny();
    let flex = Device::flex().autodiff();
    flex.seed(7);
    let d = ProjectedDiscriminator::new(&cfg, &flex).unwrap();
    let logits = |device: &Device| -> (Vec<usize>, Vec<f32>) {
        let d = d.clone().fork(device);
        let b = 4;
        let res = 16;
        let real = Tensor::<4>::from_data(
            TensorData::new(wave(b * res * res, 0.011), [b, 1, res, res]),
            device,
        );
        let y = d.forward(real);
        (
            y.dims().to_vec(),
            y.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
        )
    };
    let (dims, want) = logits(&flex);
    let (_, got) = logits(&vk.device.clone().autodiff());
    let k = dims[1];
    let mut worst = Vec::new();
    for j in 0..k {
        let col = |v: &[f32]| (0..dims[0]).map(|i| v[i * k + j]).collect::<Vec<_>>();
        worst.push(max_rel_diff(&col(&got), &col(&want)));
    }
    eprintln!("logit columns {k}: max relative diff per column {worst:?}");
    let r = max_rel_diff(&got, &want);
    assert!(r <= 1e-4, "logits differ: {r:.2e} ({worst:?})");
}

/// A spectral-norm convolution with one output channel, the shape of a mini-discriminator's
/// logit layer, run on a real and a fake batch under the hinge loss as a discriminator step
/// runs it: weight and bias gradients on vulkan against flex, three times. With the weight
/// divided by sigma before the convolution, burn 0.22.1's Vulkan backend gave weight gradients
/// off by up to 35x of their largest value (different from process to process) whenever the
/// layer ran twice in one graph; `SnConv2d` divides the output instead (see its `forward`).
#[test]
fn spectral_norm_conv_run_twice_matches_flex_on_vulkan() {
    use mammo_gan::layers::SnConv2d;
    // Seconds on lavapipe, with a wide margin (1e-7 against 1e-4): CI runs it.
    let Some(vk) = vulkan_for_tests_at(VulkanTier::Ci) else {
        return;
    };
    let flex = Device::flex().autodiff();
    flex.seed(11);
    let layer = SnConv2d::new(8, 1, 4, 1, 0, &flex);
    let run = |device: &Device| -> Vec<Vec<f32>> {
        let layer = layer.clone().fork(device);
        let batch = |k: f32| {
            Tensor::<4>::from_data(TensorData::new(wave(4 * 8 * 25, k), [4, 8, 5, 5]), device)
        };
        let loss = relu(-layer.forward(batch(0.13)) + 1.0).mean()
            + relu(layer.forward(batch(0.05)) + 1.0).mean();
        // The power iteration's running vector is module state without a gradient.
        let grads: Vec<Vec<f32>> = grads_of(loss, &layer)
            .1
            .into_iter()
            .filter(|g| !g.is_empty())
            .collect();
        grads
    };
    let want = run(&flex);
    assert_eq!(want.len(), 2, "weight and bias");
    let mut failures = Vec::new();
    for attempt in 0..3 {
        for (i, (o, w)) in run(&vk.device.clone().autodiff())
            .iter()
            .zip(&want)
            .enumerate()
        {
            let r = max_rel_diff(o, w);
            eprintln!("attempt {attempt}: param {i}: max relative diff {r:.2e}");
            if r > 1e-4 {
                failures.push(format!("attempt {attempt}, param {i}: {r:.2e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("; "));
}
