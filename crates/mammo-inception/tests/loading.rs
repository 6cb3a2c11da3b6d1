//! Loading pytorch-fid's keys from safetensors files written independently of burn (as Python's
//! `safetensors.torch.save_file` writes them), and the exact error messages for wrong files.

mod common;

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, bridge};
use burn::tensor::Device;
use mammo_inception::{FidInception, InceptionError, load_safetensors, state_dict_keys};
use mammo_models::deterministic::deterministic_state_dict;

use common::{Raw, scratch, write_safetensors};

const GAIN: f32 = 2.0;

/// The deterministic weights as a pytorch-fid file would hold them: torchvision keys, a
/// `num_batches_tracked` per batch norm and the 1008-way `fc` classifier.
fn pytorch_fid_file(rename: impl Fn(&str) -> String) -> Vec<Raw> {
    let model = FidInception::new(&Device::flex());
    let mut raws: Vec<Raw> = deterministic_state_dict(&model, GAIN)
        .into_iter()
        .map(|(key, data)| {
            Raw::f32(
                &rename(&key),
                data.shape(),
                &data.try_to_vec::<f32>().unwrap(),
            )
        })
        .collect();
    let counters: Vec<String> = raws
        .iter()
        .filter_map(|r| {
            r.key
                .strip_suffix(".running_mean")
                .map(|p| format!("{p}.num_batches_tracked"))
        })
        .collect();
    raws.extend(counters.iter().map(|k| Raw::i64_scalar(k, 0)));
    raws.push(Raw::f32(
        "fc.weight",
        &[1008, 2048],
        &vec![0.0; 1008 * 2048],
    ));
    raws.push(Raw::f32("fc.bias", &[1008], &vec![0.0; 1008]));
    raws
}

/// Every tensor of `model` equals the deterministic value under its key.
fn assert_deterministic(model: &FidInception) {
    let want: std::collections::BTreeMap<String, Vec<f32>> = deterministic_state_dict(model, GAIN)
        .into_iter()
        .map(|(k, d)| (k, d.try_to_vec::<f32>().unwrap()))
        .collect();
    let got = model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
    assert_eq!(got.len(), want.len());
    for tensor in got {
        let name = tensor.name.clone();
        let data = bridge::into_data(tensor).unwrap();
        assert_eq!(data.try_to_vec::<f32>().unwrap(), want[&name], "{name}");
    }
}

#[test]
fn loads_pytorch_fid_keys() {
    let path = scratch("torchvision_keys.safetensors");
    write_safetensors(&path, &pytorch_fid_file(str::to_string));
    let model = load_safetensors(&path, &Device::flex()).unwrap();
    assert_deterministic(&model);
}

/// The keys of a saved `InceptionV3().state_dict()`: the layers under `blocks.{b}.{i}`.
#[test]
fn loads_inception_v3_wrapper_keys() {
    let blocks: [&[&str]; 4] = [
        &["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"],
        &["Conv2d_3b_1x1", "Conv2d_4a_3x3"],
        &[
            "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
            "Mixed_6e",
        ],
        &["Mixed_7a", "Mixed_7b", "Mixed_7c"],
    ];
    let wrap = |key: &str| -> String {
        let (layer, tail) = key.split_once('.').unwrap();
        for (b, layers) in blocks.iter().enumerate() {
            if let Some(i) = layers.iter().position(|l| *l == layer) {
                return format!("blocks.{b}.{i}.{tail}");
            }
        }
        key.to_string() // fc.*
    };
    let path = scratch("wrapper_keys.safetensors");
    let raws: Vec<Raw> = pytorch_fid_file(wrap)
        .into_iter()
        .filter(|r| !r.key.starts_with("fc."))
        .collect();
    assert!(raws.iter().all(|r| r.key.starts_with("blocks.")));
    write_safetensors(&path, &raws);
    let model = load_safetensors(&path, &Device::flex()).unwrap();
    assert_deterministic(&model);
}

#[test]
fn the_network_has_pytorch_fid_parameter_count() {
    // torchvision's `inception_v3(num_classes=1008, aux_logits=False)` state dict without `fc.*`
    // and the counters, as counted with torchvision 0.29: 94 BasicConv2d of 5 tensors each,
    // 21,785,568 trainable values (23,850,960 with the 1008-way fc).
    let keys = state_dict_keys(&FidInception::new(&Device::flex()));
    assert_eq!(keys.len(), 94 * 5);
    let params: usize = keys
        .iter()
        .filter(|(k, _)| !k.ends_with("running_mean") && !k.ends_with("running_var"))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    assert_eq!(params, 21_785_568);
}

#[test]
fn a_missing_file_is_named() {
    let path = scratch("absent.safetensors");
    let err = load_safetensors(&path, &Device::flex()).unwrap_err();
    assert!(matches!(err, InceptionError::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}: ", path.display())),
        "{err}"
    );
}

#[test]
fn unexpected_keys_are_named() {
    let path = scratch("unexpected.safetensors");
    write_safetensors(
        &path,
        &[
            Raw::f32("AuxLogits.fc.bias", &[1008], &[0.0; 1008]),
            Raw::f32("Conv2d_1a_3x3.conv.bias", &[32], &[0.0; 32]),
            Raw::f32("fc.bias", &[1008], &[0.0; 1008]),
        ],
    );
    let err = load_safetensors(&path, &Device::flex()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: 2 tensor(s) not in the FID Inception: AuxLogits.fc.bias, Conv2d_1a_3x3.conv.bias",
            path.display()
        )
    );
}

#[test]
fn a_wrong_shape_is_named() {
    let path = scratch("shape.safetensors");
    write_safetensors(
        &path,
        &[Raw::f32(
            "blocks.3.2.branch_pool.bn.running_var",
            &[191],
            &[1.0; 191],
        )],
    );
    let err = load_safetensors(&path, &Device::flex()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: tensor blocks.3.2.branch_pool.bn.running_var has shape [191], the FID Inception \
             expects [192]",
            path.display()
        )
    );
}

#[test]
fn missing_keys_are_counted_and_the_first_named() {
    let path = scratch("missing.safetensors");
    let raws: Vec<Raw> = pytorch_fid_file(str::to_string)
        .into_iter()
        .filter(|r| !r.key.starts_with("Mixed_7c.branch3x3dbl_3b.bn."))
        .collect();
    write_safetensors(&path, &raws);
    let err = load_safetensors(&path, &Device::flex()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: 4 FID Inception parameter(s) missing from the file: \
             Mixed_7c.branch3x3dbl_3b.bn.bias, Mixed_7c.branch3x3dbl_3b.bn.running_mean, \
             Mixed_7c.branch3x3dbl_3b.bn.running_var, \
             Mixed_7c.branch3x3dbl_3b.bn.weight",
            path.display()
        )
    );

    // An empty file: all 470 named up to 8, the rest counted.
    write_safetensors(&path, &[]);
    let err = load_safetensors(&path, &Device::flex()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            ": 470 FID Inception parameter(s) missing from the file: Conv2d_1a_3x3.bn.bias, "
        ),
        "{text}"
    );
    assert!(text.ends_with(", ... and 462 more"), "{text}");
}
