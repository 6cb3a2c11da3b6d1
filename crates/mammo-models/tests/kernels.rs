//! The fused flex kernels (`mammo_models::kernels`) against burn's own operations, on every
//! registered model: inference logits, and for a training step the logits, the gradient of
//! every parameter and of the input, and the updated batch-norm running statistics.
//!
//! Training-mode gradients of these deterministic models at 64 px are ill-conditioned in the
//! deeper networks (batch norm over 8 values per channel in the last stage): burn's own
//! gradients of resnet34/50/152 and tf_efficientnet_lite0 move by up to 5 % when the input is
//! scaled by 1 + 1e-6. Gradients are therefore compared on [`GRADIENT_MODELS`], which are
//! well-conditioned and between them run every fused path (ReLU, identity and SiLU after batch
//! norm, MaxViT's pre-norm, the squeeze-excite sigmoid); on the others the training step's
//! logits and running statistics are compared, with a slack of twice what the 1e-6 nudge
//! moves them under burn's own ops.
//!
//! One test function: the kernel switch is process-wide, so the two paths run in sequence.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use mammo_models::{Classifier, MODELS, kernels};

use common::{det_input, det_model, max_abs_diff, train_step, values};

/// Models whose gradients are compared (see the module comment), within 1e-3 of the largest
/// gradient: the reductions over a batch run in another order.
const GRADIENT_MODELS: [&str; 3] = ["resnet18", "efficientnet_b0", "maxvit_nano_rw_256"];

/// `|a - b| <= tol * max(1, max |b|) + slack`.
fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32, slack: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(a, b);
    assert!(
        diff <= tol * scale + slack,
        "{what}: max abs diff {diff} (scale {scale}, conditioning slack {slack})"
    );
}

#[test]
fn fused_kernels_match_burn_ops_on_every_model() {
    for spec in MODELS {
        let name = spec.name;

        // Inference.
        let device = Device::flex();
        let m = det_model(name, &device).valid();
        kernels::set_enabled(false);
        let reference = values(m.forward(det_input(&device, 1.0)));
        kernels::set_enabled(true);
        let fused = values(m.forward(det_input(&device, 1.0)));
        assert_close(
            &format!("{name} inference logits"),
            &fused,
            &reference,
            1e-4,
            0.0,
        );

        // Training step.
        kernels::set_enabled(false);
        let reference = train_step(name, &Device::flex(), 0.0, "kernels");
        let nudged = train_step(name, &Device::flex(), 1e-6, "kernels-nudged");
        kernels::set_enabled(true);
        let fused = train_step(name, &Device::flex(), 0.0, "kernels");
        let well_conditioned = GRADIENT_MODELS.contains(&name);
        let slack = |a: &[f32], b: &[f32]| {
            if well_conditioned {
                0.0
            } else {
                2.0 * max_abs_diff(a, b)
            }
        };
        assert_close(
            &format!("{name} train logits"),
            &fused.logits,
            &reference.logits,
            1e-4,
            slack(&nudged.logits, &reference.logits),
        );
        let mut running = 0;
        for (key, b) in &reference.state {
            let a = fused.state[key].try_to_vec::<f32>().unwrap();
            let n = nudged.state[key].try_to_vec::<f32>().unwrap();
            let b = b.try_to_vec::<f32>().unwrap();
            if key.ends_with("running_mean") || key.ends_with("running_var") {
                running += 1;
            }
            assert_close(
                &format!("{name} {key} after the step"),
                &a,
                &b,
                1e-4,
                slack(&n, &b),
            );
        }
        assert!(running > 0, "{name}: no batch norm state");
        if !well_conditioned {
            continue;
        }
        assert_close(
            &format!("{name} input grad"),
            &fused.input_grad,
            &reference.input_grad,
            1e-3,
            0.0,
        );
        assert_eq!(fused.param_grads.len(), reference.param_grads.len());
        let mut compared = 0;
        for ((what, a), (_, b)) in fused.param_grads.iter().zip(&reference.param_grads) {
            assert_eq!(
                a.is_empty(),
                b.is_empty(),
                "{name} {what}: gradient presence"
            );
            if !a.is_empty() {
                assert_close(&format!("{name} {what} grad"), a, b, 1e-3, 0.0);
                compared += 1;
            }
        }
        assert!(compared > 10, "{name}: only {compared} parameter gradients");
    }
}
