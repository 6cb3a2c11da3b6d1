//! Tiny dataset fixtures made in the test: DICOM files written with dicom-object, tables
//! written as text in each dataset's documented shape.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;

/// A fresh, empty folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("mammo-preprocess-datasets")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What goes into a fixture DICOM header besides the pixels.
#[derive(Default, Clone, Copy)]
pub struct Header<'a> {
    pub laterality: Option<&'a str>,
    pub view: Option<&'a str>,
    pub sop_uid: Option<&'a str>,
}

/// Writes a MONOCHROME2, 16-bit, uncompressed DICOM of `width` x `height` pixels.
pub fn write_dicom(path: &Path, width: u16, height: u16, pixels: &[u16], h: Header<'_>) {
    assert_eq!(pixels.len(), width as usize * height as usize);
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, value: PrimitiveValue| {
        obj.put(DataElement::new(tag, vr, value));
    };
    let sop = h.sop_uid.unwrap_or("2.25.1");
    put(
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION.into(),
    );
    put(tags::SOP_INSTANCE_UID, VR::UI, sop.into());
    put(tags::MODALITY, VR::CS, "MG".into());
    if let Some(l) = h.laterality {
        put(tags::IMAGE_LATERALITY, VR::CS, l.into());
    }
    if let Some(v) = h.view {
        put(tags::VIEW_POSITION, VR::CS, v.into());
    }
    put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2".into(),
    );
    put(tags::ROWS, VR::US, PrimitiveValue::from(height));
    put(tags::COLUMNS, VR::US, PrimitiveValue::from(width));
    put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
    put(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16));
    put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16));
    put(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0u16),
    );
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.iter().copied().collect()),
    ));
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION)
        .media_storage_sop_instance_uid(sop);
    let file = obj.with_meta(meta).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    file.write_to_file(path).unwrap();
}

/// A mammogram-like image: a bright half-disc (the breast) against the chest wall on the
/// `side` (`L`: chest wall at the left edge), on a dark background.
pub fn breast(width: u16, height: u16, side: &str) -> Vec<u16> {
    let (w, h) = (width as f64, height as f64);
    let mut px = vec![100u16; width as usize * height as usize];
    for y in 0..height as usize {
        for x in 0..width as usize {
            let dx = if side == "L" {
                x as f64
            } else {
                w - 1.0 - x as f64
            };
            let dy = y as f64 - h / 2.0;
            if (dx / (0.7 * w)).powi(2) + (dy / (0.45 * h)).powi(2) < 1.0 {
                px[y * width as usize + x] = 3000 + ((x * 7 + y * 13) % 200) as u16;
            }
        }
    }
    px
}

/// A binary mask (0 / 255) with `[x0, x1) x [y0, y1)` set.
pub fn mask(width: u16, height: u16, [x0, y0, x1, y1]: [usize; 4]) -> Vec<u16> {
    let mut px = vec![0u16; width as usize * height as usize];
    for y in y0..y1 {
        for x in x0..x1 {
            px[y * width as usize + x] = 255;
        }
    }
    px
}

/// Writes `text` at `root/rel`, making folders.
pub fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}
