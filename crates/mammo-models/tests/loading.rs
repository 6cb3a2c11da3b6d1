//! Loading timm-style safetensors files written independently of burn: input-conv adaptation,
//! head skipping, ignored buffers, and the exact error messages.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use mammo_models::deterministic::{
    deterministic_input, deterministic_state_dict, fill_deterministic,
};
use mammo_models::{
    Classifier, MODELS, ModelConfig, ModelError, create_model, load_timm_safetensors, spec,
};

use common::{Raw, max_abs_diff, scratch, tensor4, test_config, values, write_safetensors};

/// An "ImageNet" resnet18 checkpoint as timm saves it: 3 channels, 1000 classes, with
/// `num_batches_tracked` buffers.
fn imagenet_like_resnet18(path: &std::path::Path) -> mammo_models::Model {
    let cfg = ModelConfig::new("resnet18")
        .unwrap()
        .with_in_chans(3)
        .with_num_classes(1000);
    let mut model = create_model(&cfg, &Device::flex()).unwrap();
    fill_deterministic(&mut model, 1.0);
    let mut raw: Vec<Raw> = deterministic_state_dict(&model, 1.0)
        .iter()
        .map(|(k, d)| Raw::f32(k, d))
        .collect();
    raw.push(Raw::i64_scalar("bn1.num_batches_tracked", 7));
    raw.push(Raw::i64_scalar("layer1.0.bn1.num_batches_tracked", 7));
    write_safetensors(path, &raw);
    model
}

#[test]
fn three_channel_checkpoint_loads_into_one_channel_binary_model() {
    let device = Device::flex();
    let path = scratch("imagenet-like-resnet18.safetensors");
    let rgb = imagenet_like_resnet18(&path).valid();

    let cfg = ModelConfig::new("resnet18").unwrap();
    let mut grey = create_model(&cfg, &device).unwrap();
    let report = load_timm_safetensors(&mut grey, spec("resnet18").unwrap(), &path).unwrap();
    assert_eq!(report.adapted_first_conv, Some((3, 1)));
    assert_eq!(report.skipped_head, ["fc.bias", "fc.weight"]);
    assert_eq!(
        report.ignored,
        [
            "bn1.num_batches_tracked",
            "layer1.0.bn1.num_batches_tracked"
        ]
    );
    assert_eq!(report.loaded, 102 - 2);
    assert_eq!(
        report.notes,
        [
            "conv1.weight: summed 3 input channels into 1",
            "classifier fc: fc.bias is [1000] in the file but [1] in the model; head left at its \
             initialisation",
        ]
    );

    // A grey image repeated over R, G, B through the RGB model equals the grey image through
    // the summed conv: convolution is linear in its input channels.
    let grey = grey.valid();
    let x = tensor4(deterministic_input([2, 1, 64, 64]), &device);
    let x_rgb = Tensor::cat(vec![x.clone(), x.clone(), x.clone()], 1); // [2, 3, 64, 64]
    let want = values(rgb.forward_features(x_rgb));
    let got = values(grey.forward_features(x));
    let diff = max_abs_diff(&want, &got);
    assert!(
        diff <= 1e-4,
        "adapted conv differs from the RGB model by {diff}"
    );
}

/// Every registered model: an ImageNet-shaped checkpoint (3 channels, 1000 classes) loads into
/// the 1-channel binary model through the spec's `first_conv` and `classifier` names.
#[test]
fn every_model_adapts_a_three_channel_checkpoint() {
    let device = Device::flex();
    for spec in MODELS {
        let rgb_cfg = test_config(spec.name)
            .with_in_chans(3)
            .with_num_classes(1000);
        let mut rgb = create_model(&rgb_cfg, &device).unwrap();
        fill_deterministic(&mut rgb, 1.0);
        let raw: Vec<Raw> = deterministic_state_dict(&rgb, 1.0)
            .iter()
            .map(|(k, d)| Raw::f32(k, d))
            .collect();
        let path = scratch(&format!("imagenet-like-{}.safetensors", spec.name));
        write_safetensors(&path, &raw);

        let mut grey = create_model(&test_config(spec.name), &device).unwrap();
        let report = load_timm_safetensors(&mut grey, spec, &path).unwrap();
        assert_eq!(report.adapted_first_conv, Some((3, 1)), "{}", spec.name);
        let head = [
            format!("{}.bias", spec.classifier),
            format!("{}.weight", spec.classifier),
        ];
        assert_eq!(report.skipped_head, head, "{}", spec.name);

        let x = tensor4(deterministic_input([1, 1, 64, 64]), &device);
        let x_rgb = Tensor::cat(vec![x.clone(), x.clone(), x.clone()], 1); // [1, 3, 64, 64]
        let want = values(rgb.valid().forward_features(x_rgb));
        let got = values(grey.valid().forward_features(x));
        let diff = max_abs_diff(&want, &got);
        assert!(
            diff <= 1e-4,
            "{}: adapted conv differs by {diff}",
            spec.name
        );
    }
}

#[test]
fn unexpected_keys_are_listed() {
    let path = scratch("extra-keys.safetensors");
    let cfg = ModelConfig::new("resnet18").unwrap();
    let model = create_model(&cfg, &Device::flex()).unwrap();
    let mut raw: Vec<Raw> = deterministic_state_dict(&model, 1.0)
        .iter()
        .map(|(k, d)| Raw::f32(k, d))
        .collect();
    let extra = burn::tensor::TensorData::new(vec![0.0f32; 4], [4]);
    raw.push(Raw::f32("head.norm.weight", &extra));
    raw.push(Raw::f32("layer5.0.bn1.bias", &extra));
    write_safetensors(&path, &raw);

    let mut model = create_model(&cfg, &Device::flex()).unwrap();
    let err = load_timm_safetensors(&mut model, spec("resnet18").unwrap(), &path).unwrap_err();
    assert!(matches!(err, ModelError::UnexpectedKeys { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: 2 tensor(s) not in model resnet18: head.norm.weight, layer5.0.bn1.bias",
            path.display()
        )
    );
}

#[test]
fn missing_keys_are_listed() {
    let path = scratch("missing-keys.safetensors");
    let cfg = ModelConfig::new("resnet18").unwrap();
    let model = create_model(&cfg, &Device::flex()).unwrap();
    let raw: Vec<Raw> = deterministic_state_dict(&model, 1.0)
        .iter()
        .filter(|(k, _)| !k.starts_with("layer4.1.bn2."))
        .map(|(k, d)| Raw::f32(k, d))
        .collect();
    write_safetensors(&path, &raw);

    let mut model = create_model(&cfg, &Device::flex()).unwrap();
    let err = load_timm_safetensors(&mut model, spec("resnet18").unwrap(), &path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: 4 parameter(s) of model resnet18 missing from the file: layer4.1.bn2.bias, \
             layer4.1.bn2.running_mean, layer4.1.bn2.running_var, layer4.1.bn2.weight",
            path.display()
        )
    );
}

#[test]
fn wrong_architecture_is_rejected_by_name() {
    // A resnet34 file into a resnet18: the extra blocks are reported, nothing is half-loaded.
    let path = scratch("resnet34-as-18.safetensors");
    let cfg34 = ModelConfig::new("resnet34").unwrap();
    let model34 = create_model(&cfg34, &Device::flex()).unwrap();
    let raw: Vec<Raw> = deterministic_state_dict(&model34, 1.0)
        .iter()
        .map(|(k, d)| Raw::f32(k, d))
        .collect();
    write_safetensors(&path, &raw);

    let cfg18 = ModelConfig::new("resnet18").unwrap();
    let mut model18 = create_model(&cfg18, &Device::flex()).unwrap();
    let err = load_timm_safetensors(&mut model18, spec("resnet18").unwrap(), &path).unwrap_err();
    match err {
        ModelError::UnexpectedKeys { keys, .. } => {
            assert!(
                keys.contains(&"layer1.2.conv1.weight".to_string()),
                "{keys:?}"
            );
            assert!(
                keys.contains(&"layer3.5.bn2.running_var".to_string()),
                "{keys:?}"
            );
        }
        other => panic!("expected UnexpectedKeys, got {other}"),
    }
}

#[test]
fn shape_mismatch_names_the_key() {
    // A 1-channel checkpoint into a 3-channel model is not an adaptation timm does.
    let path = scratch("grey-into-rgb.safetensors");
    let grey = create_model(&ModelConfig::new("resnet18").unwrap(), &Device::flex()).unwrap();
    let raw: Vec<Raw> = deterministic_state_dict(&grey, 1.0)
        .iter()
        .map(|(k, d)| Raw::f32(k, d))
        .collect();
    write_safetensors(&path, &raw);

    let cfg = ModelConfig::new("resnet18").unwrap().with_in_chans(3);
    let mut rgb = create_model(&cfg, &Device::flex()).unwrap();
    let err = load_timm_safetensors(&mut rgb, spec("resnet18").unwrap(), &path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot adapt conv1.weight from 1 to 3 input channel(s)",
            path.display()
        )
    );
}

#[test]
fn unknown_model_and_bad_config_errors() {
    let err = ModelConfig::new("resnet19").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown model \"resnet19\"; known models: resnet18, resnet34, resnet50, resnet152, \
         efficientnet_b0, tf_efficientnet_lite0, maxvit_nano_rw_256"
    );

    let cfg = ModelConfig::new("resnet18").unwrap().with_drop_rate(1.0);
    assert_eq!(
        cfg.validate().unwrap_err().to_string(),
        "invalid model config for resnet18: drop_rate must be in [0, 1), got 1"
    );
    let mut cfg = ModelConfig::new("resnet18").unwrap();
    cfg.in_chans = 2;
    assert!(create_model(&cfg, &Device::flex()).is_err());
}

#[test]
fn config_json_round_trip() {
    let cfg = ModelConfig::new("resnet50")
        .unwrap()
        .with_in_chans(3)
        .with_drop_rate(0.25);
    let path = scratch("resnet50.config.json");
    cfg.save_json(&path).unwrap();
    assert_eq!(ModelConfig::load_json(&path).unwrap(), cfg);
    assert_eq!(cfg.mean, mammo_models::IMAGENET_MEAN);
    let grey = ModelConfig::new("resnet50").unwrap();
    assert_eq!(grey.mean.len(), 1);
    assert!((grey.mean[0] - 0.449).abs() < 1e-6 && (grey.std[0] - 0.226).abs() < 1e-6);
    // timm's tf_efficientnet_lite0.in1k expects [-1, 1] input: mean = std = 0.5.
    let lite = ModelConfig::new("tf_efficientnet_lite0").unwrap();
    assert_eq!(
        (lite.mean.as_slice(), lite.std.as_slice()),
        (&[0.5][..], &[0.5][..])
    );
    let lite = lite.with_in_chans(3);
    assert_eq!(lite.mean, [0.5; 3]);
}

/// A file whose 8-byte length claims a long header it does not hold is refused naming both
/// sizes, reading only what is there (the header buffer is not sized from the claim).
#[test]
fn a_header_longer_than_the_file_is_refused() {
    let mut bytes = (90u64 << 20).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{\"__metadata__\":{}}");
    let err = mammo_models::read_model_config_from(&bytes[..], std::path::Path::new("w.st"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("w.st"), "{err}");
    assert!(err.contains("claims 94371840 bytes"), "{err}");
    assert!(err.contains("holds 19"), "{err}");
}

/// The in-memory loader gives what the file loader gives.
#[test]
fn bytes_and_file_loaders_agree() {
    let path = scratch("bytes-vs-file.safetensors");
    imagenet_like_resnet18(&path);
    let cfg = ModelConfig::new("resnet18").unwrap();
    let spec = spec("resnet18").unwrap();
    let mut a = create_model(&cfg, &Device::flex()).unwrap();
    let mut b = a.clone();
    let ra = load_timm_safetensors(&mut a, spec, &path).unwrap();
    let rb = mammo_models::load_timm_safetensors_bytes(
        &mut b,
        spec,
        std::fs::read(&path).unwrap(),
        &path,
    )
    .unwrap();
    assert_eq!(ra, rb);
    let x = tensor4(deterministic_input([2, 1, 64, 64]), &Device::flex());
    let (a, b) = (a.valid(), b.valid());
    assert_eq!(
        max_abs_diff(&values(a.forward(x.clone())), &values(b.forward(x))),
        0.0
    );
}

/// Saving the same model twice gives the same bytes (a resumed training run is compared
/// byte for byte with an uninterrupted one), and the canonical file still loads and carries
/// its config.
#[test]
fn saved_weights_are_byte_identical_and_load_back() {
    let cfg = ModelConfig::new("resnet18").unwrap();
    let mut model = create_model(&cfg, &Device::flex()).unwrap();
    fill_deterministic(&mut model, 1.0);
    let files: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            let path = scratch(&format!("canonical-{i}.safetensors"));
            mammo_models::save_safetensors(&model, &cfg, &path).unwrap();
            std::fs::read(&path).unwrap()
        })
        .collect();
    assert!(files.windows(2).all(|w| w[0] == w[1]), "saves differ");
    let len = u64::from_le_bytes(files[0][..8].try_into().unwrap()) as usize;
    assert_eq!(len % 8, 0);
    let path = scratch("canonical-0.safetensors");
    std::fs::write(&path, &files[0]).unwrap();
    assert_eq!(
        mammo_models::read_model_config(&path).unwrap(),
        Some(cfg.clone())
    );
    let mut back = create_model(&cfg, &Device::flex()).unwrap();
    let report = load_timm_safetensors(&mut back, spec("resnet18").unwrap(), &path).unwrap();
    assert_eq!(report.loaded, mammo_models::timm_keys(&model).len());
    let x = tensor4(deterministic_input([1, 1, 64, 64]), &Device::flex());
    let (a, b) = (model.valid(), back.valid());
    assert_eq!(
        max_abs_diff(&values(a.forward(x.clone())), &values(b.forward(x))),
        0.0
    );
}
