//! Weights in safetensors files under timm state-dict keys.
//!
//! burn names a batch norm's scale and shift `gamma`/`beta` and stores a linear weight as
//! `[in, out]`; PyTorch says `weight`/`bias` and `[out, in]`. burn-store's PyTorch adapters
//! translate both ways, and enum variant names (`Model::ResNet`, `Block::Basic`) are skipped,
//! so the keys in a file are exactly timm's: `conv1.weight`, `bn1.running_var`,
//! `layer1.0.downsample.1.weight`, `fc.bias`, ...

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    BurnToPyTorchAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, SafetensorsStore,
    bridge,
};
use burn::tensor::{DType, TensorData};

use crate::config::{CONFIG_METADATA_KEY, ModelConfig};
use crate::error::{ModelError, Result};
use crate::registry::ModelSpec;

/// What [`load_timm_safetensors`] did besides copying tensors one to one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors copied into the model.
    pub loaded: usize,
    /// `(from, to)` input channels when the first conv was adapted (3 -> 1 sums over channels).
    pub adapted_first_conv: Option<(usize, usize)>,
    /// Classifier keys not loaded because their shape differs (e.g. 1000 ImageNet classes
    /// into a 1-logit head); the head keeps its fresh initialisation.
    pub skipped_head: Vec<String>,
    /// Keys ignored on purpose (`*.num_batches_tracked`, which burn does not keep).
    pub ignored: Vec<String>,
    /// One human-readable line per adaptation or skip, for logs.
    pub notes: Vec<String>,
}

/// The model's parameters and buffers under their timm keys, with PyTorch-layout shapes.
/// Reads no tensor data.
pub fn timm_keys<M: Module>(model: &M) -> BTreeMap<String, Vec<usize>> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect()
}

fn store_err(action: &'static str, path: &Path, e: impl Into<mammo_io::Cause>) -> ModelError {
    ModelError::Store {
        action,
        path: path.to_path_buf(),
        cause: e.into(),
    }
}

/// Load a timm state dict saved as safetensors into `model`, matching tensors by name.
///
/// - `*.num_batches_tracked` entries are ignored (listed in the report).
/// - Tensors in another float dtype (f16, bf16, f64) are converted to f32.
/// - If the file's first conv has 3 input channels and the model 1, the weight is summed over
///   the input-channel axis, as timm's `adapt_input_conv` does; any other channel mismatch is
///   an error.
/// - If any classifier tensor's shape differs from the model's, the whole classifier is left
///   at its initialisation and listed in [`LoadReport::skipped_head`].
/// - Any other key in the file but not in the model, in the model but not in the file, or with
///   a different shape, is an error naming every such key.
pub fn load_timm_safetensors<M: Module>(
    model: &mut M,
    spec: &ModelSpec,
    path: &Path,
) -> Result<LoadReport> {
    load_from_store(model, spec, SafetensorsStore::from_file(path), path)
}

/// [`load_timm_safetensors`] on a file's bytes already in memory (an upload, a fuzz input);
/// `name` stands for the file in errors.
pub fn load_timm_safetensors_bytes<M: Module>(
    model: &mut M,
    spec: &ModelSpec,
    bytes: Vec<u8>,
    name: &Path,
) -> Result<LoadReport> {
    load_from_store(model, spec, SafetensorsStore::from_bytes(Some(bytes)), name)
}

fn load_from_store<M: Module>(
    model: &mut M,
    spec: &ModelSpec,
    mut store: SafetensorsStore,
    path: &Path,
) -> Result<LoadReport> {
    let expected = timm_keys(model);
    let mut file: BTreeMap<String, PackTensor> = store
        .get_all_tensors()
        .map_err(|e| store_err("read", path, e))?
        .clone();
    let mut report = LoadReport::default();

    file.retain(|key, _| {
        let keep = !key.ends_with(".num_batches_tracked");
        if !keep {
            report.ignored.push(key.clone());
        }
        keep
    });

    adapt_first_conv(&mut file, &expected, spec, path, &mut report)?;
    skip_mismatched_head(&mut file, &expected, spec, &mut report);

    let unexpected: Vec<String> = file
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .cloned()
        .collect();
    if !unexpected.is_empty() {
        return Err(ModelError::UnexpectedKeys {
            path: path.to_path_buf(),
            model: spec.name.to_string(),
            keys: unexpected,
        });
    }
    let missing: Vec<String> = expected
        .keys()
        .filter(|k| !file.contains_key(*k) && !report.skipped_head.contains(k))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(ModelError::MissingKeys {
            path: path.to_path_buf(),
            model: spec.name.to_string(),
            keys: missing,
        });
    }
    for (key, tensor) in &file {
        let want = &expected[key];
        if tensor.shape.as_slice() != want.as_slice() {
            return Err(ModelError::ShapeMismatch {
                path: path.to_path_buf(),
                model: spec.name.to_string(),
                key: key.clone(),
                expected: want.clone(),
                found: tensor.shape.to_vec(),
            });
        }
    }

    let tensors: Vec<PackTensor> = file.into_values().map(to_f32).collect();
    report.loaded = tensors.len();
    let result = model.apply(tensors, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    if !result.errors.is_empty() || !result.unused.is_empty() {
        let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        problems.extend(result.unused.iter().map(|k| format!("unused tensor {k}")));
        return Err(store_err("load", path, problems.join("; ")));
    }
    Ok(report)
}

/// Write `model` to `path` under timm keys in PyTorch layout (loadable by
/// `timm.create_model(..., num_classes=cfg.num_classes, in_chans=cfg.in_chans)` followed by
/// `load_state_dict`), with `cfg` as JSON in the metadata. Atomic: the file appears complete
/// or not at all.
///
/// The same model and config give the same bytes in every process: the header is written
/// with sorted keys (the writer's own metadata map iterates in a per-process random order).
pub fn save_safetensors<M: Module>(model: &M, cfg: &ModelConfig, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .metadata("format", "pt")
        .metadata(CONFIG_METADATA_KEY, cfg.to_json());
    model
        .save_into(&mut store)
        .map_err(|e| store_err("write", path, e))?;
    let mut bytes = store.get_bytes().map_err(|e| store_err("write", path, e))?;
    canonicalise_header(&mut bytes).map_err(|e| store_err("write", path, e))?;
    mammo_image::write_atomic(path, &bytes).map_err(|e| store_err("write", path, e))
}

/// Rewrites, in place, a safetensors file's JSON header with sorted keys (tensor entries and
/// `__metadata__` alike), padded with spaces to a multiple of 8 bytes; the tensor bytes are
/// unchanged (their offsets count from the end of the header).
fn canonicalise_header(bytes: &mut Vec<u8>) -> std::result::Result<(), mammo_io::Cause> {
    type Header = BTreeMap<String, BTreeMap<String, serde_json::Value>>;
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("the writer produced no header")?;
    let len = u64::from_le_bytes(len_bytes) as usize;
    let end = 8usize
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or("the writer's header length exceeds its output")?;
    let header: Header = serde_json::from_slice(&bytes[8..end])?;
    let mut text = serde_json::to_vec(&header)?;
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut prefix = (text.len() as u64).to_le_bytes().to_vec();
    prefix.append(&mut text);
    // In the same buffer: when the header's length is unchanged the tensor bytes are not
    // even moved, and the file is never copied whole.
    bytes.splice(..end, prefix);
    Ok(())
}

/// The [`ModelConfig`] a mammo-written safetensors file carries in its metadata
/// (`mammo.model_config`), or `None` for a file without one (a plain timm checkpoint). Reads
/// only the header.
pub fn read_model_config(path: &Path) -> Result<Option<ModelConfig>> {
    let f = std::fs::File::open(path).map_err(|e| store_err("read the header of", path, e))?;
    read_model_config_from(f, path)
}

/// [`read_model_config`] on any reader; `path` names it in errors.
pub fn read_model_config_from(
    mut f: impl std::io::Read,
    path: &Path,
) -> Result<Option<ModelConfig>> {
    use std::io::Read;
    let err = |m: mammo_io::Cause| store_err("read the header of", path, m);
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| err(e.into()))?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(err(format!(
            "header length {len} is implausible; not a safetensors file"
        )
        .into()));
    }
    // Read what is there, at most `len`: a short file claiming a long header allocates
    // only what it holds.
    let mut header = Vec::new();
    f.take(len)
        .read_to_end(&mut header)
        .map_err(|e| err(e.into()))?;
    if header.len() as u64 != len {
        return Err(err(format!(
            "the header claims {len} bytes, the file holds {} after the length",
            header.len()
        )
        .into()));
    }
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| err(e.into()))?;
    match header
        .get("__metadata__")
        .and_then(|m| m.get(CONFIG_METADATA_KEY))
        .and_then(|v| v.as_str())
    {
        Some(text) => ModelConfig::from_json(text).map(Some),
        None => Ok(None),
    }
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

/// timm `adapt_input_conv` for the case this project needs: a 3-channel first conv into a
/// 1-channel model, `weight.sum(dim=1, keepdim=True)`.
fn adapt_first_conv(
    file: &mut BTreeMap<String, PackTensor>,
    expected: &BTreeMap<String, Vec<usize>>,
    spec: &ModelSpec,
    path: &Path,
    report: &mut LoadReport,
) -> Result<()> {
    let key = format!("{}.weight", spec.first_conv);
    let (Some(tensor), Some(want)) = (file.get(&key), expected.get(&key)) else {
        return Ok(()); // reported as missing or unexpected later
    };
    let shape = tensor.shape.to_vec();
    if shape.len() != 4 || want.len() != 4 || shape[1] == want[1] {
        return Ok(());
    }
    let (from, to) = (shape[1], want[1]);
    if !(from == 3 && to == 1) {
        return Err(ModelError::InputConvAdaptation {
            path: path.to_path_buf(),
            key,
            from,
            to,
        });
    }
    let tensor = file.remove(&key).expect("checked above");
    let data = bridge::into_data(tensor).map_err(|e| store_err("read", path, e))?;
    let values: Vec<f32> = data
        .convert_dtype(DType::F32)
        .try_into_vec()
        .map_err(|e| store_err("read", path, format!("{key}: {e:?}")))?;
    let [out_c, in_c, kh, kw] = [shape[0], shape[1], shape[2], shape[3]];
    let plane = kh * kw;
    let mut summed = vec![0.0f32; out_c * plane];
    for o in 0..out_c {
        for c in 0..in_c {
            let src = &values[(o * in_c + c) * plane..][..plane];
            for (dst, v) in summed[o * plane..][..plane].iter_mut().zip(src) {
                *dst += v;
            }
        }
    }
    let data = TensorData::new(summed, [out_c, 1, kh, kw]);
    file.insert(key.clone(), bridge::from_data(data, key.clone(), None));
    report.adapted_first_conv = Some((from, to));
    report
        .notes
        .push(format!("{key}: summed {from} input channels into {to}"));
    Ok(())
}

/// Drop every classifier tensor when any of them has a shape the model's head does not.
fn skip_mismatched_head(
    file: &mut BTreeMap<String, PackTensor>,
    expected: &BTreeMap<String, Vec<usize>>,
    spec: &ModelSpec,
    report: &mut LoadReport,
) {
    let prefix = format!("{}.", spec.classifier);
    let head: Vec<&String> = expected.keys().filter(|k| k.starts_with(&prefix)).collect();
    let mismatch = head.iter().find_map(|k| {
        let found = file.get(*k)?.shape.to_vec();
        (found != expected[*k]).then(|| (k.to_string(), found, expected[*k].clone()))
    });
    if let Some((key, found, want)) = mismatch {
        for k in head {
            file.remove(k);
            report.skipped_head.push(k.clone());
        }
        report.notes.push(format!(
            "classifier {}: {key} is {found:?} in the file but {want:?} in the model; head left \
             at its initialisation",
            spec.classifier
        ));
    }
}
