//! FID Inception weights from a safetensors file under pytorch-fid's state-dict keys.
//!
//! Two spellings of the same keys are accepted:
//! - the keys of pytorch-fid's weight file `pt_inception-2015-12-05-6726825d.pth` (torchvision
//!   `Inception3` attribute names: `Conv2d_1a_3x3.conv.weight`, `Mixed_7c.branch_pool.bn.bias`),
//!   which are this crate's module paths, and
//! - the keys of a saved `pytorch_fid.inception.InceptionV3().state_dict()`, where the layers
//!   sit in `blocks.{block}.{index}` (`blocks.0.0.conv.weight`, `blocks.3.2.branch_pool.bn.bias`).
//!
//! burn names a batch norm's scale and shift `gamma`/`beta`; burn-store's PyTorch adapter maps
//! PyTorch's `weight`/`bias` onto them.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    BurnToPyTorchAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, SafetensorsStore,
    bridge,
};
use burn::tensor::{DType, Device};

use crate::error::InceptionError;
use crate::model::FidInception;

/// The layers of pytorch-fid's `InceptionV3.blocks`, in order within each block (the max
/// pools, which hold no parameters, are left out: they come last in blocks 0 and 1).
const BLOCK_LAYERS: [&[&str]; 4] = [
    &["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"],
    &["Conv2d_3b_1x1", "Conv2d_4a_3x3"],
    &[
        "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
        "Mixed_6e",
    ],
    &["Mixed_7a", "Mixed_7b", "Mixed_7c"],
];

/// Whether `key` is in pytorch-fid's file but not part of the pool3 network: the 1008-way
/// ImageNet classifier (`fc.weight`, `fc.bias`) and batch-norm counters.
fn ignored(key: &str) -> bool {
    key == "fc.weight" || key == "fc.bias" || key.ends_with(".num_batches_tracked")
}

/// The torchvision key for an `InceptionV3` wrapper key (`blocks.2.0.branch1x1.conv.weight` ->
/// `Mixed_5b.branch1x1.conv.weight`); `None` when `key` is not under a known `blocks.b.i`.
fn unwrap_block_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("blocks.")?;
    let mut parts = rest.splitn(3, '.');
    let block: usize = parts.next()?.parse().ok()?;
    let index: usize = parts.next()?.parse().ok()?;
    let tail = parts.next()?;
    let layer = BLOCK_LAYERS.get(block)?.get(index)?;
    Some(format!("{layer}.{tail}"))
}

/// The network's parameters and batch-norm statistics under their PyTorch keys, with
/// PyTorch-layout shapes. Reads no tensor data.
pub fn state_dict_keys(model: &FidInception) -> BTreeMap<String, Vec<usize>> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect()
}

/// Load pytorch-fid's FID Inception weights from a safetensors file (see the crate docs for
/// converting pytorch-fid's `.pth` once).
///
/// Keys may be spelled either way described in this module; `fc.*` and
/// `*.num_batches_tracked` are skipped; f16/bf16/f64 tensors are converted to f32. Any other
/// key in the file but not in the network, with another shape, or in the network but not in
/// the file is an error naming the file and the keys (checked in that order).
pub fn load_safetensors(
    path: impl AsRef<Path>,
    device: &Device,
) -> Result<FidInception, InceptionError> {
    let path = path.as_ref();
    let mut model = FidInception::new(device);
    let expected = state_dict_keys(&model);

    let mut store = SafetensorsStore::from_file(path);
    let file = store
        .get_all_tensors()
        .map_err(|e| InceptionError::Read {
            path: path.to_path_buf(),
            cause: e.into(),
        })?
        .clone();

    let mut tensors: BTreeMap<String, PackTensor> = BTreeMap::new();
    let mut file_key: BTreeMap<String, String> = BTreeMap::new(); // network key -> file key
    let mut unexpected = Vec::new();
    for (key, mut tensor) in file {
        if ignored(&key) {
            continue;
        }
        let name = unwrap_block_key(&key).unwrap_or_else(|| key.clone());
        if !expected.contains_key(&name) || tensors.contains_key(&name) {
            unexpected.push(key);
            continue;
        }
        tensor.name = name.clone();
        file_key.insert(name.clone(), key);
        tensors.insert(name, tensor);
    }
    if !unexpected.is_empty() {
        return Err(InceptionError::UnexpectedKeys {
            path: path.to_path_buf(),
            keys: unexpected,
        });
    }
    for (key, tensor) in &tensors {
        let want = &expected[key];
        if tensor.shape.as_slice() != want.as_slice() {
            return Err(InceptionError::ShapeMismatch {
                path: path.to_path_buf(),
                key: file_key[key].clone(),
                expected: want.clone(),
                found: tensor.shape.to_vec(),
            });
        }
    }

    let missing: Vec<String> = expected
        .keys()
        .filter(|k| !tensors.contains_key(*k))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(InceptionError::MissingKeys {
            path: path.to_path_buf(),
            keys: missing,
        });
    }
    let tensors: Vec<PackTensor> = tensors.into_values().map(to_f32).collect();
    let result = model.apply(tensors, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    if !result.errors.is_empty() || !result.unused.is_empty() || !result.missing.is_empty() {
        let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        problems.extend(result.unused.iter().map(|k| format!("unused tensor {k}")));
        problems.extend(
            result
                .missing
                .iter()
                .map(|k| format!("missing tensor {k:?}")),
        );
        return Err(InceptionError::Load {
            path: path.to_path_buf(),
            message: problems.join("; "),
        });
    }
    Ok(model)
}

/// The tensor as f32, converted lazily if it is stored in another float type.
fn to_f32(tensor: PackTensor) -> PackTensor {
    if tensor.dtype == DType::F32 || !tensor.dtype.is_float() {
        return tensor;
    }
    let (name, shape) = (tensor.name.clone(), tensor.shape.clone());
    bridge::map_data(tensor, name, DType::F32, shape, |d| {
        d.convert_dtype(DType::F32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_keys_map_to_torchvision_keys() {
        let cases = [
            ("blocks.0.0.conv.weight", Some("Conv2d_1a_3x3.conv.weight")),
            (
                "blocks.0.2.bn.running_var",
                Some("Conv2d_2b_3x3.bn.running_var"),
            ),
            ("blocks.1.1.bn.bias", Some("Conv2d_4a_3x3.bn.bias")),
            (
                "blocks.2.0.branch_pool.conv.weight",
                Some("Mixed_5b.branch_pool.conv.weight"),
            ),
            (
                "blocks.2.7.branch1x1.bn.weight",
                Some("Mixed_6e.branch1x1.bn.weight"),
            ),
            (
                "blocks.3.2.branch3x3dbl_3b.conv.weight",
                Some("Mixed_7c.branch3x3dbl_3b.conv.weight"),
            ),
            ("blocks.0.3.weight", None), // the max pool has no parameters
            ("blocks.4.0.conv.weight", None),
            ("Mixed_5b.branch1x1.conv.weight", None),
        ];
        for (key, want) in cases {
            assert_eq!(unwrap_block_key(key).as_deref(), want, "{key}");
        }
    }

    /// Every layer named in [`BLOCK_LAYERS`] exists, and together they cover the network.
    #[test]
    fn block_layers_cover_the_network() {
        let model = FidInception::new(&Device::flex());
        let layers: std::collections::BTreeSet<String> = state_dict_keys(&model)
            .keys()
            .map(|k| k.split('.').next().unwrap().to_string())
            .collect();
        let listed: std::collections::BTreeSet<String> = BLOCK_LAYERS
            .iter()
            .flat_map(|b| b.iter().map(|s| s.to_string()))
            .collect();
        assert_eq!(layers, listed);
    }
}
