//! One harness per parser that reads untrusted bytes. The cargo-fuzz targets in `fuzz/`
//! call these under libFuzzer; `cargo test` replays the committed corpora and every input
//! that ever crashed one (`fuzz/regressions/<target>/`) through the same functions, so CI
//! re-checks past crashes on a stable toolchain.
//!
//! A harness must never panic, abort or allocate without bound: errors are the expected
//! outcome for almost every input and are ignored.

use std::io::Cursor;
use std::path::Path;

use mammo_dicom::{DicomImage, Renderer, VoiChoice};

/// The frame-size limit the harnesses open DICOM with: large enough for every code path,
/// small enough that a legitimate decode stays within libFuzzer's RSS limit.
pub const MAX_PIXELS: u64 = 1 << 22;

/// A harness: takes any bytes, returns nothing, must not panic.
pub type Harness = fn(&[u8]);

/// Every harness by target name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[(&str, Harness)] = &[
    ("dicom", dicom),
    ("j2k", j2k),
    ("png", png),
    ("rsna_csv", rsna_csv),
    ("manifest", manifest),
    #[cfg(feature = "models")]
    ("toml_config", toml_config),
    #[cfg(feature = "models")]
    ("safetensors", safetensors),
];

/// DICOM open, decode (full and reduced resolution) and render (first VOI and min-max).
pub fn dicom(data: &[u8]) {
    let Ok(image) = DicomImage::from_bytes("fuzz.dcm", data, MAX_PIXELS) else {
        return;
    };
    for reduce in [0, 1] {
        let Ok(frame) = image.decode(0, reduce) else {
            continue;
        };
        for voi in [VoiChoice::First, VoiChoice::None] {
            if let Ok(r) = Renderer::new(voi).render(image.meta(), &frame) {
                let _ = mammo_dicom::quantize(&r.data, 8);
            }
        }
    }
}

/// The JPEG 2000 wrapper on a bare codestream or JP2 file: header, then decode at two
/// resolutions when the header's size is within [`MAX_PIXELS`] (as the DICOM path checks).
pub fn j2k(data: &[u8]) {
    let Ok(h) = mammo_j2k::read_header(data) else {
        return;
    };
    if h.width as u64 * h.height as u64 * h.components.max(1) as u64 > MAX_PIXELS {
        return;
    }
    for reduce in [0, 1] {
        let _ = mammo_j2k::decode(data, &mammo_j2k::DecodeOptions { reduce, threads: 1 });
    }
}

/// Grayscale PNG reading (what `train`, `predict` and `gan` read).
pub fn png(data: &[u8]) {
    let _ = mammo_image::read_png_gray_from(Cursor::new(data), Path::new("fuzz.png"));
}

/// train.csv reading and validation.
pub fn rsna_csv(data: &[u8]) {
    let _ = mammo_preprocess::read_rsna_csv_from(data, Path::new("train.csv"));
}

/// manifest.csv reading.
pub fn manifest(data: &[u8]) {
    let _ = mammo_dataset::read_manifest_from(data, Path::new("manifest.csv"));
}

#[cfg(feature = "models")]
/// The TOML configs a user writes: `mammo experiment --config`, `mammo train --config`
/// (a `[train]` table or a bare one) and `mammo gan --config`, parsed and validated.
pub fn toml_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let _ = mammo_experiment::ExperimentConfig::from_toml_str(text, path);
    let _ = mammo_train::TrainConfig::from_toml_str(text, path);
    let _ = mammo_gan::GanConfig::from_toml_str(text, path);
}

#[cfg(feature = "models")]
/// A ResNet18 (1 channel, 1 logit), built once: the model weights files are loaded into.
fn weights_target() -> &'static mammo_models::Model {
    static MODEL: std::sync::OnceLock<mammo_models::Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let cfg = mammo_models::ModelConfig::new("resnet18").expect("resnet18 is registered");
        mammo_models::create_model(&cfg, &burn::tensor::Device::flex())
            .expect("resnet18 builds on flex")
    })
}

#[cfg(feature = "models")]
/// Weights loading (`--weights`, `--pretrained`): the safetensors header and the model
/// config in its metadata, then the timm-key matching, dtype conversion and first-conv
/// adaptation into a ResNet18.
pub fn safetensors(data: &[u8]) {
    let name = Path::new("fuzz.safetensors");
    let _ = mammo_models::read_model_config_from(data, name);
    let mut model = weights_target().clone();
    let spec = mammo_models::spec("resnet18").expect("resnet18 is registered");
    let _ = mammo_models::load_timm_safetensors_bytes(&mut model, spec, data.to_vec(), name);
}
