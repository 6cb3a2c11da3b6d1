//! Checks every registered model gets: shapes, finite outputs, gradients at the first conv,
//! and an exact save -> load round trip. A model added to `MODELS` is covered automatically.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use mammo_models::deterministic::{deterministic_input, fill_deterministic, norm_gain};
use mammo_models::{
    Classifier, MODELS, ModelConfig, create_model, load_timm_safetensors, save_safetensors,
    timm_keys,
};

use common::{TEST_SIZE, max_abs_diff, scratch, tensor4, test_config, values};

const BATCH: usize = 2;
const SIZE: usize = TEST_SIZE;

fn small_input(device: &Device) -> Tensor<4> {
    tensor4(deterministic_input([BATCH, 1, SIZE, SIZE]), device)
}

#[test]
fn every_model_has_the_classifier_shapes_and_finite_outputs() {
    let device = Device::flex();
    for spec in MODELS {
        let cfg = test_config(spec.name);
        let model = create_model(&cfg, &device).unwrap().valid();

        let features = model.forward_features(small_input(&device));
        let [b, c, h, w] = features.dims();
        assert_eq!(
            [b, c, h, w],
            [BATCH, model.num_features(), SIZE / 32, SIZE / 32],
            "{}",
            spec.name
        );

        let logits = model.forward_head(features.clone());
        assert_eq!(logits.dims(), [BATCH, cfg.num_classes], "{}", spec.name);
        assert!(
            values(features).iter().all(|v| v.is_finite()),
            "{}: features not finite",
            spec.name
        );
        let logits = values(logits);
        assert!(
            logits.iter().all(|v| v.is_finite()),
            "{}: logits not finite: {logits:?}",
            spec.name
        );

        let direct = values(model.forward(small_input(&device)));
        assert_eq!(
            direct, logits,
            "{}: forward != forward_head(forward_features)",
            spec.name
        );
    }
}

/// Every named feature layer splits the forward pass exactly (what CAM at a chosen layer
/// relies on), and the last one is `forward_features`.
#[test]
fn every_model_splits_at_each_feature_layer() {
    let device = Device::flex();
    for spec in MODELS {
        let mut model = create_model(&test_config(spec.name), &device).unwrap();
        fill_deterministic(&mut model, norm_gain(&spec.arch));
        let model = model.valid();
        let layers = model.feature_layers();
        assert!(layers.len() >= 4, "{}: {layers:?}", spec.name);
        let direct = values(model.forward(small_input(&device)));
        let features = values(model.forward_features(small_input(&device)));
        for (i, name) in layers.iter().enumerate() {
            let a = model.forward_until(small_input(&device), i);
            if i + 1 == layers.len() {
                assert_eq!(
                    values(a.clone()),
                    features,
                    "{}: last layer {name} != forward_features",
                    spec.name
                );
            }
            let split = values(model.forward_after(a, i));
            let diff = max_abs_diff(&split, &direct);
            assert!(
                diff <= 1e-5,
                "{}: split at {name} changes the logits by {diff}",
                spec.name
            );
        }
        // one pass over several layers gives what one pass per layer gives
        let pick: Vec<usize> = (0..layers.len())
            .filter(|i| i % 2 == 1 || i + 1 == layers.len())
            .collect();
        let pyramid = model.forward_pyramid(small_input(&device), &pick);
        assert_eq!(pyramid.len(), pick.len(), "{}", spec.name);
        for (t, &i) in pyramid.into_iter().zip(&pick) {
            let want = values(model.forward_until(small_input(&device), i));
            assert_eq!(
                values(t),
                want,
                "{}: pyramid level {} differs",
                spec.name,
                layers[i]
            );
        }
    }
}

#[test]
fn every_model_passes_gradients_to_its_first_conv() {
    let device = Device::flex().autodiff();
    for spec in MODELS {
        let cfg = test_config(spec.name).with_drop_rate(0.2);
        let model = create_model(&cfg, &device).unwrap();
        let logits = model.forward(small_input(&device)); // batch-norm in training mode
        let grads = logits.sum().backward();
        let grad = model
            .first_conv()
            .weight
            .val()
            .grad(&grads)
            .unwrap_or_else(|| panic!("{}: no gradient at the first conv", spec.name));
        let weight_dims = model.first_conv().weight.dims();
        assert_eq!(
            weight_dims[1], 1,
            "{}: first conv input channels",
            spec.name
        );
        assert_eq!(grad.dims(), weight_dims, "{}", spec.name);
        let grad = values(grad);
        assert!(
            grad.iter().all(|v| v.is_finite()),
            "{}: gradient not finite",
            spec.name
        );
        let norm: f32 = grad.iter().map(|v| v.abs()).sum();
        assert!(
            norm > 0.0,
            "{}: gradient at the first conv is all zero",
            spec.name
        );
    }
}

#[test]
fn every_model_round_trips_through_safetensors() {
    let device = Device::flex();
    for spec in MODELS {
        let cfg = test_config(spec.name);
        let mut saved = create_model(&cfg, &device).unwrap();
        fill_deterministic(&mut saved, norm_gain(&spec.arch));
        let path = scratch(&format!("roundtrip-{}.safetensors", spec.name));
        save_safetensors(&saved, &cfg, &path).unwrap();
        assert_eq!(
            mammo_models::read_model_config(&path).unwrap().as_ref(),
            Some(&cfg),
            "{}",
            spec.name
        );

        let mut loaded = create_model(&cfg, &device).unwrap();
        let report = load_timm_safetensors(&mut loaded, spec, &path).unwrap();
        assert_eq!(report.loaded, timm_keys(&saved).len(), "{}", spec.name);
        assert!(report.notes.is_empty(), "{}: {:?}", spec.name, report.notes);

        let before = values(saved.valid().forward(small_input(&device)));
        let after = values(loaded.valid().forward(small_input(&device)));
        assert_eq!(max_abs_diff(&before, &after), 0.0, "{}", spec.name);
    }
}

/// Parameter counts of the timm/torchvision ImageNet models (3 channels, 1000 classes), as
/// printed by `sum(p.numel() for p in model.parameters())`.
#[test]
fn parameter_counts_match_timm() {
    let expected = [
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet152", 60_192_808),
        ("efficientnet_b0", 5_288_548),
        ("tf_efficientnet_lite0", 4_652_008),
        // At the default 256 x 256 (window 8: relative position tables of 15 x 15 rows).
        ("maxvit_nano_rw_256", 15_451_148),
    ];
    let device = Device::flex();
    for spec in MODELS {
        let cfg = ModelConfig::new(spec.name)
            .unwrap()
            .with_in_chans(3)
            .with_num_classes(1000);
        let model = create_model(&cfg, &device).unwrap();
        // burn's `num_params` also counts batch-norm running statistics; timm's count does not.
        let params: usize = timm_keys(&model)
            .iter()
            .filter(|(k, _)| !k.ends_with(".running_mean") && !k.ends_with(".running_var"))
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum();
        let (_, want) = expected
            .iter()
            .find(|(name, _)| *name == spec.name)
            .unwrap_or_else(|| panic!("{}: add its timm parameter count to this test", spec.name));
        assert_eq!(params, *want, "{}", spec.name);
    }
}

/// Keys and shapes checked by hand against `timm.create_model("resnet18", num_classes=1,
/// in_chans=1).state_dict()`: 122 entries, of which 20 are `num_batches_tracked`.
#[test]
fn resnet18_keys_are_timm_state_dict_keys() {
    let cfg = ModelConfig::new("resnet18").unwrap();
    let keys = timm_keys(&create_model(&cfg, &Device::flex()).unwrap());
    assert_eq!(keys.len(), 102);
    let expect = [
        ("conv1.weight", vec![64, 1, 7, 7]),
        ("bn1.weight", vec![64]),
        ("bn1.bias", vec![64]),
        ("bn1.running_mean", vec![64]),
        ("bn1.running_var", vec![64]),
        ("layer1.0.conv1.weight", vec![64, 64, 3, 3]),
        ("layer1.1.bn2.running_var", vec![64]),
        ("layer2.0.conv1.weight", vec![128, 64, 3, 3]),
        ("layer2.0.downsample.0.weight", vec![128, 64, 1, 1]),
        ("layer2.0.downsample.1.weight", vec![128]),
        ("layer2.0.downsample.1.running_mean", vec![128]),
        ("layer4.1.conv2.weight", vec![512, 512, 3, 3]),
        ("fc.weight", vec![1, 512]),
        ("fc.bias", vec![1]),
    ];
    for (key, shape) in expect {
        assert_eq!(keys.get(key), Some(&shape), "{key}");
    }
    assert!(!keys.contains_key("layer1.0.downsample.0.weight"));
}

#[test]
fn resnet50_bottleneck_keys() {
    let cfg = ModelConfig::new("resnet50").unwrap();
    let keys = timm_keys(&create_model(&cfg, &Device::flex()).unwrap());
    // 1 stem conv + 16 blocks x 3 convs + 4 downsample convs = 53 convs, each followed by a
    // BN with 4 tensors, plus fc: 267 keys, timm's 320 less 53 `num_batches_tracked`.
    assert_eq!(keys.len(), 53 + 53 * 4 + 2);
    assert_eq!(keys["layer1.0.conv1.weight"], vec![64, 64, 1, 1]);
    assert_eq!(keys["layer1.0.conv3.weight"], vec![256, 64, 1, 1]);
    assert_eq!(keys["layer1.0.downsample.0.weight"], vec![256, 64, 1, 1]);
    assert_eq!(keys["layer2.0.conv2.weight"], vec![128, 128, 3, 3]);
    assert_eq!(keys["layer4.2.bn3.running_var"], vec![2048]);
    assert_eq!(keys["fc.weight"], vec![1, 2048]);
}

/// Checked against `timm.create_model("efficientnet_b0", num_classes=1, in_chans=1)
/// .state_dict()` (timm 1.0.31): 360 entries, of which 49 are `num_batches_tracked`.
#[test]
fn efficientnet_b0_keys_are_timm_state_dict_keys() {
    let cfg = ModelConfig::new("efficientnet_b0").unwrap();
    let keys = timm_keys(&create_model(&cfg, &Device::flex()).unwrap());
    assert_eq!(keys.len(), 360 - 49);
    let expect = [
        ("conv_stem.weight", vec![32, 1, 3, 3]),
        ("bn1.running_var", vec![32]),
        // Stage 0: depthwise-separable, squeeze-excite on the block input (32 -> 8).
        ("blocks.0.0.conv_dw.weight", vec![32, 1, 3, 3]),
        ("blocks.0.0.se.conv_reduce.weight", vec![8, 32, 1, 1]),
        ("blocks.0.0.se.conv_reduce.bias", vec![8]),
        ("blocks.0.0.se.conv_expand.weight", vec![32, 8, 1, 1]),
        ("blocks.0.0.conv_pw.weight", vec![16, 32, 1, 1]),
        ("blocks.0.0.bn2.running_mean", vec![16]),
        // Inverted residuals: SE width from the block input (16 * 0.25), on the 96 hidden.
        ("blocks.1.0.conv_pw.weight", vec![96, 16, 1, 1]),
        ("blocks.1.0.conv_dw.weight", vec![96, 1, 3, 3]),
        ("blocks.1.0.se.conv_reduce.weight", vec![4, 96, 1, 1]),
        ("blocks.1.0.se.conv_expand.bias", vec![96]),
        ("blocks.1.0.conv_pwl.weight", vec![24, 96, 1, 1]),
        ("blocks.2.0.conv_dw.weight", vec![144, 1, 5, 5]),
        ("blocks.5.3.se.conv_reduce.weight", vec![48, 1152, 1, 1]),
        ("blocks.6.0.conv_pwl.weight", vec![320, 1152, 1, 1]),
        ("blocks.6.0.bn3.weight", vec![320]),
        ("conv_head.weight", vec![1280, 320, 1, 1]),
        ("bn2.bias", vec![1280]),
        ("classifier.weight", vec![1, 1280]),
        ("classifier.bias", vec![1]),
    ];
    for (key, shape) in expect {
        assert_eq!(keys.get(key), Some(&shape), "{key}");
    }
    assert!(!keys.contains_key("blocks.7.0.conv_pw.weight"));
    assert!(!keys.contains_key("blocks.5.4.conv_pw.weight"));
}

/// Lite0 has B0's convolutions without squeeze-excite: 296 timm entries less 49
/// `num_batches_tracked`.
#[test]
fn tf_efficientnet_lite0_keys_have_no_squeeze_excite() {
    let cfg = ModelConfig::new("tf_efficientnet_lite0").unwrap();
    let keys = timm_keys(&create_model(&cfg, &Device::flex()).unwrap());
    assert_eq!(keys.len(), 296 - 49);
    assert!(keys.keys().all(|k| !k.contains(".se.")), "{keys:?}");
    assert_eq!(keys["blocks.2.1.conv_dw.weight"], vec![240, 1, 5, 5]);
    assert_eq!(keys["conv_head.weight"], vec![1280, 320, 1, 1]);
}

/// Checked against `timm.create_model("maxvit_nano_rw_256", num_classes=1, in_chans=1)
/// .state_dict()` (timm 1.0.31): 350 entries, of which 22 are `num_batches_tracked`; the
/// non-persistent `relative_position_index` buffers are in neither. The relative position
/// tables follow the input size: 15 x 15 offsets at 256 (window 8), 3 x 3 at 64 (window 2).
#[test]
fn maxvit_nano_keys_are_timm_state_dict_keys() {
    let cfg = ModelConfig::new("maxvit_nano_rw_256").unwrap();
    let keys = timm_keys(&create_model(&cfg, &Device::flex()).unwrap());
    assert_eq!(keys.len(), 350 - 22);
    let expect = [
        ("stem.conv1.weight", vec![32, 1, 3, 3]),
        ("stem.norm1.running_var", vec![32]),
        ("stem.conv2.weight", vec![64, 32, 3, 3]),
        ("stages.0.blocks.0.conv.pre_norm.weight", vec![64]),
        (
            "stages.0.blocks.0.conv.conv1_1x1.weight",
            vec![256, 64, 1, 1],
        ),
        (
            "stages.0.blocks.0.conv.conv2_kxk.weight",
            vec![256, 1, 3, 3],
        ),
        ("stages.0.blocks.0.conv.se.fc1.weight", vec![16, 256, 1, 1]),
        ("stages.0.blocks.0.conv.se.fc2.bias", vec![256]),
        (
            "stages.0.blocks.0.conv.conv3_1x1.weight",
            vec![64, 256, 1, 1],
        ),
        ("stages.0.blocks.0.attn_block.norm1.weight", vec![64]),
        (
            "stages.0.blocks.0.attn_block.attn.qkv.weight",
            vec![192, 64],
        ),
        (
            "stages.0.blocks.0.attn_block.attn.rel_pos.relative_position_bias_table",
            vec![225, 2],
        ),
        ("stages.0.blocks.0.attn_grid.mlp.fc2.weight", vec![64, 256]),
        (
            "stages.1.blocks.0.conv.shortcut.expand.weight",
            vec![128, 64, 1, 1],
        ),
        (
            "stages.1.blocks.1.conv.conv2_kxk.weight",
            vec![512, 1, 3, 3],
        ),
        (
            "stages.2.blocks.2.attn_block.mlp.fc1.weight",
            vec![1024, 256],
        ),
        (
            "stages.3.blocks.0.attn_grid.attn.rel_pos.relative_position_bias_table",
            vec![225, 16],
        ),
        ("norm.weight", vec![512]),
        ("head.fc.weight", vec![1, 512]),
        ("head.fc.bias", vec![1]),
    ];
    for (key, shape) in expect {
        assert_eq!(keys.get(key), Some(&shape), "{key}");
    }
    // Only a stride-2 block whose width changes has a shortcut conv; none is biased.
    assert!(!keys.contains_key("stages.0.blocks.0.conv.shortcut.expand.weight"));
    assert!(!keys.contains_key("stages.1.blocks.1.conv.shortcut.expand.weight"));
    assert!(!keys.contains_key("stages.1.blocks.0.conv.conv3_1x1.bias"));
    assert!(keys.keys().all(|k| !k.ends_with("relative_position_index")));

    let small = timm_keys(&create_model(&cfg.with_input_size([64, 64]), &Device::flex()).unwrap());
    assert_eq!(
        small["stages.3.blocks.0.attn_grid.attn.rel_pos.relative_position_bias_table"],
        vec![9, 16]
    );
}

#[test]
fn maxvit_rejects_an_input_size_off_its_partition_ratio() {
    let err = ModelConfig::new("maxvit_nano_rw_256")
        .unwrap()
        .with_input_size([224, 200])
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid model config for maxvit_nano_rw_256: input_size must be a multiple of 32 (the \
         attention window is input_size / 32), got [224, 200]"
    );
}
