//! mammo's heat maps against pytorch-grad-cam's on the same weights and input
//! (fixture made by tools/fixtures/make_gradcam_fixtures.py; versions in its metadata).

use burn::tensor::Device;
use mammo_explain::{Explainer, METHODS, Method, explain};
use mammo_models::deterministic::{fill_deterministic, norm_gain};
use mammo_models::{ModelConfig, create_model, spec};
use safetensors::SafeTensors;

const SIZE: usize = 128;

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gradcam.safetensors"
    ))
    .expect("fixture")
}

fn floats(st: &SafeTensors, name: &str) -> Vec<f32> {
    let t = st
        .tensor(name)
        .unwrap_or_else(|_| panic!("{name} in fixture"));
    match t.dtype() {
        safetensors::Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        safetensors::Dtype::F16 => t
            .data()
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        other => panic!("{name}: {other:?}"),
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 => f32::INFINITY,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (
        a.iter().map(|&v| v as f64).sum::<f64>() / n,
        b.iter().map(|&v| v as f64).sum::<f64>() / n,
    );
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt()
}

fn explainer(name: &str) -> Explainer {
    explainer_on(name, &Device::flex())
}

fn explainer_on(name: &str, device: &Device) -> Explainer {
    let device = device.clone();
    let cfg = ModelConfig::new(name)
        .unwrap()
        .with_input_size([SIZE, SIZE]);
    let mut model = create_model(&cfg, &device).unwrap();
    fill_deterministic(&mut model, norm_gain(&spec(name).unwrap().arch));
    Explainer::new(model, cfg, &device)
}

#[test]
fn heat_maps_match_pytorch_grad_cam() {
    let bytes = fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let input = floats(&st, "input");
    let methods = [
        Method::GradCam,
        Method::GradCamPlusPlus,
        Method::LayerCam,
        Method::HiResCam,
    ];
    let (mut compared, mut flat) = (0, 0);
    for (model, layers) in [
        ("resnet18", vec!["layer4", "layer3"]),
        ("efficientnet_b0", vec!["conv_head"]),
    ] {
        let ex = explainer(model);
        for layer in layers {
            let g = ex
                .layer_gradients(
                    input.clone(),
                    SIZE,
                    SIZE,
                    ex.layer_index(Some(layer)).unwrap(),
                )
                .unwrap();
            let want_logit = floats(&st, &format!("{model}/logit"))[0];
            assert!(
                (g.logit - want_logit).abs() <= 1e-4 * want_logit.abs().max(1.0),
                "{model}: logit {} vs timm {want_logit}",
                g.logit
            );
            for e in explain(&g, &methods, SIZE, SIZE) {
                let want = floats(&st, &format!("{model}/{layer}/{}", e.method));
                let r = correlation(&e.heat, &want);
                let max_diff = e
                    .heat
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                eprintln!(
                    "{model} {layer} {}: correlation {r:.6}, max |diff| {max_diff:.4}, map {}x{}",
                    e.method, g.height, g.width
                );
                if want.iter().all(|&v| v == want[0]) {
                    // The class evidence is negative everywhere: ReLU leaves nothing, both agree.
                    assert!(
                        max_diff <= 1e-3,
                        "{model} {layer} {}: pytorch-grad-cam's map is flat, mammo's is not",
                        e.method
                    );
                    flat += 1;
                    continue;
                }
                assert!(
                    r >= 0.999,
                    "{model} {layer} {}: correlation {r} with pytorch-grad-cam",
                    e.method
                );
                compared += 1;
            }
        }
    }
    assert!(
        compared >= 10 && flat <= 2,
        "{compared} maps compared, {flat} flat: the fixture no longer exercises the methods"
    );
}

/// With a global-average-pool + linear head, CAM's weights are Grad-CAM's times h*w, so the
/// scaled maps coincide (Grad-CAM at a non-final layer is not CAM, but the arithmetic
/// identity holds at any layer); and the default layer is the end of `forward_features`.
#[test]
fn cam_equals_gradcam_for_pooled_linear_heads_and_default_layer_is_last() {
    let bytes = fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let input = floats(&st, "input");
    let ex = explainer("resnet18");
    assert_eq!(
        ex.layer_index(None).unwrap(),
        ex.layer_index(Some("layer4")).unwrap()
    );
    let err = ex.layer_index(Some("layer5")).unwrap_err().to_string();
    assert!(err.contains("layer5") && err.contains("layer4"), "{err}");
    // layer3: at layer4 these deterministic weights give a map that ReLU flattens.
    let g = ex
        .layer_gradients(input, SIZE, SIZE, ex.layer_index(Some("layer3")).unwrap())
        .unwrap();
    let maps = explain(&g, &METHODS, SIZE, SIZE);
    assert!(
        maps[1].heat.iter().any(|&v| v != maps[1].heat[0]),
        "Grad-CAM map is flat: the check would be vacuous"
    );
    let (cam, gradcam) = (&maps[0], &maps[1]);
    let diff = cam
        .heat
        .iter()
        .zip(&gradcam.heat)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-4, "CAM vs Grad-CAM max diff {diff}");
}

/// The same maps on a Vulkan device (lavapipe on CI) as on flex and as pytorch-grad-cam's.
/// Runs only with `MAMMO_TEST_VULKAN=1` (see `mammo_models::TEST_VULKAN_ENV`).
#[test]
fn heat_maps_on_vulkan_match_flex_and_pytorch_grad_cam() {
    let Some(vk) = mammo_models::vulkan_for_tests() else {
        return;
    };
    let bytes = fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let input = floats(&st, "input");
    let mut compared = 0;
    for (model, layer) in [("resnet18", "layer3"), ("efficientnet_b0", "conv_head")] {
        let (flex, gpu) = (explainer(model), explainer_on(model, &vk.device));
        let index = flex.layer_index(Some(layer)).unwrap();
        let a = flex
            .layer_gradients(input.clone(), SIZE, SIZE, index)
            .unwrap();
        let b = gpu
            .layer_gradients(input.clone(), SIZE, SIZE, index)
            .unwrap();
        assert!(
            (a.logit - b.logit).abs() <= 1e-4 * a.logit.abs().max(1.0),
            "{model}: logit {} on vulkan, {} on flex",
            b.logit,
            a.logit
        );
        for (ea, eb) in explain(&a, &METHODS, SIZE, SIZE)
            .into_iter()
            .zip(explain(&b, &METHODS, SIZE, SIZE))
        {
            let max_diff = ea
                .heat
                .iter()
                .zip(&eb.heat)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            let r = correlation(&ea.heat, &eb.heat);
            eprintln!(
                "{model} {layer} {}: vulkan vs flex correlation {r:.7}, max |diff| {max_diff:.2e}",
                ea.method
            );
            if ea.heat.iter().all(|&v| v == ea.heat[0]) {
                assert!(
                    max_diff <= 1e-3,
                    "{model} {layer} {}: flat on flex, not on vulkan",
                    ea.method
                );
                continue;
            }
            assert!(
                r >= 0.9999 && max_diff <= 1e-3,
                "{model} {layer} {}: vulkan vs flex correlation {r}, max diff {max_diff}",
                ea.method
            );
            let key = format!("{model}/{layer}/{}", ea.method);
            if st.tensor(&key).is_ok() {
                let want = floats(&st, &key);
                if want.iter().any(|&v| v != want[0]) {
                    let r = correlation(&eb.heat, &want);
                    assert!(
                        r >= 0.999,
                        "{model} {layer} {}: vulkan vs pytorch-grad-cam correlation {r}",
                        ea.method
                    );
                }
            }
            compared += 1;
        }
    }
    assert!(compared >= 6, "only {compared} maps compared");
}
