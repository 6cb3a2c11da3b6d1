//! Writes one rendered image as a DICOM Digital Mammography X-Ray Image (For Presentation)
//! file (PS3.3 A.26), with the file meta group of PS3.10 7.1 and the pixel data encoding of
//! its machine: encapsulated JPEG 2000 (PS3.5 A.4: one fragment, empty Basic Offset Table)
//! or native Explicit VR Little Endian.

use std::path::Path;

use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;

use crate::PhantomError;
use crate::machines::PixelEncoding;
use crate::render::RenderedImage;
use crate::study::ImagePlan;

/// Implementation Class UID of this generator (PS3.7 D.3.3.2), under a fixed 2.25 root.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.196516281318406424939281016125069917931";

fn strs(values: impl IntoIterator<Item = String>) -> PrimitiveValue {
    PrimitiveValue::Strs(values.into_iter().collect())
}

/// Formats a decimal string (DS) without needless digits.
fn ds(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.6}").trim_end_matches('0').to_string()
    }
}

/// Builds the data set (without file meta) for one image.
pub fn build_object(
    plan: &ImagePlan,
    img: &RenderedImage,
) -> Result<InMemDicomObject, PhantomError> {
    let m = plan.machine;
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, value: PrimitiveValue| {
        obj.put(DataElement::new(tag, vr, value));
    };
    put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100".into());
    put(
        tags::IMAGE_TYPE,
        VR::CS,
        strs(["DERIVED".into(), "PRIMARY".into()]),
    );
    put(
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION.into(),
    );
    put(tags::SOP_INSTANCE_UID, VR::UI, plan.sop_uid.as_str().into());
    put(tags::MODALITY, VR::CS, "MG".into());
    put(
        tags::PRESENTATION_INTENT_TYPE,
        VR::CS,
        "FOR PRESENTATION".into(),
    );
    put(tags::MANUFACTURER, VR::LO, m.manufacturer.into());
    put(tags::MANUFACTURER_MODEL_NAME, VR::LO, m.model.into());
    put(
        tags::PATIENT_NAME,
        VR::PN,
        plan.patient_id.to_string().into(),
    );
    put(tags::PATIENT_ID, VR::LO, plan.patient_id.to_string().into());
    put(tags::PATIENT_SEX, VR::CS, "F".into());
    if let Some(age) = plan.age {
        put(tags::PATIENT_AGE, VR::AS, format!("{age:03}Y").into());
    }
    put(tags::BODY_PART_EXAMINED, VR::CS, "BREAST".into());
    put(tags::VIEW_POSITION, VR::CS, plan.view.as_str().into());
    put(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        plan.study_uid.as_str().into(),
    );
    put(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        plan.series_uid.as_str().into(),
    );
    put(
        tags::SERIES_NUMBER,
        VR::IS,
        plan.instance_number.to_string().into(),
    );
    put(
        tags::INSTANCE_NUMBER,
        VR::IS,
        plan.instance_number.to_string().into(),
    );
    put(
        tags::IMAGE_LATERALITY,
        VR::CS,
        plan.laterality.as_str().into(),
    );
    put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        m.photometric.as_str().into(),
    );
    put(tags::ROWS, VR::US, PrimitiveValue::from(img.height as u16));
    put(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(img.width as u16),
    );
    let spacing = ds((plan.pixel_mm * 1e4).round() / 1e4);
    put(
        tags::PIXEL_SPACING,
        VR::DS,
        strs([spacing.clone(), spacing.clone()]),
    );
    put(
        tags::IMAGER_PIXEL_SPACING,
        VR::DS,
        strs([spacing.clone(), spacing]),
    );
    put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
    put(
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(m.bits_stored as u16),
    );
    put(
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(m.bits_stored as u16 - 1),
    );
    put(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0u16),
    );
    put(
        tags::WINDOW_CENTER,
        VR::DS,
        strs(img.windows.iter().map(|w| ds(w.0))),
    );
    put(
        tags::WINDOW_WIDTH,
        VR::DS,
        strs(img.windows.iter().map(|w| ds(w.1))),
    );
    let names = ["NORMAL", "HARDER", "SOFTER"];
    put(
        tags::WINDOW_CENTER_WIDTH_EXPLANATION,
        VR::LO,
        strs(names.iter().take(img.windows.len()).map(|s| s.to_string())),
    );
    put(tags::VOILUT_FUNCTION, VR::CS, m.voi.as_str().into());
    if m.rescale {
        put(tags::RESCALE_INTERCEPT, VR::DS, "0".into());
        put(tags::RESCALE_SLOPE, VR::DS, "1".into());
        put(tags::RESCALE_TYPE, VR::LO, "US".into());
    }
    put(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00".into());

    let pixel_data = match m.encoding {
        PixelEncoding::ExplicitLittle => DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(img.pixels.iter().copied().collect()),
        ),
        PixelEncoding::J2kJp2 | PixelEncoding::J2kCodestream => {
            let container = if m.encoding == PixelEncoding::J2kJp2 {
                mammo_j2k::Container::Jp2
            } else {
                mammo_j2k::Container::Codestream
            };
            let samples: Vec<i32> = img.pixels.iter().map(|&v| v as i32).collect();
            let opts = mammo_j2k::EncodeOptions {
                container,
                resolutions: 6,
            };
            let mut bytes = mammo_j2k::encode_lossless(
                &samples,
                img.width,
                img.height,
                m.bits_stored,
                false,
                &opts,
            )
            .map_err(|source| PhantomError::Encode {
                image_id: plan.image_id,
                source,
            })?;
            if bytes.len() % 2 == 1 {
                bytes.push(0); // fragments have even length (PS3.5 A.4)
            }
            let seq = PixelFragmentSequence::new(Vec::<u32>::new(), vec![bytes]);
            DataElement::new(tags::PIXEL_DATA, VR::OB, Value::from(seq))
        }
    };
    obj.put(pixel_data);
    Ok(obj)
}

/// Writes the file atomically: a temporary file in the same folder, then a rename.
pub fn write_file(path: &Path, plan: &ImagePlan, img: &RenderedImage) -> Result<(), PhantomError> {
    let obj = build_object(plan, img)?;
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(plan.machine.encoding.transfer_syntax())
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name("MAMMO_PHANTOM");
    let file = obj.with_meta(meta).map_err(|e| PhantomError::Dicom {
        path: path.to_owned(),
        cause: e.into(),
    })?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| PhantomError::Dicom {
            path: path.to_owned(),
            cause: e.into(),
        })?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` via a synced temporary sibling and a rename
/// ([`mammo_io::write_atomic`]); the temporary is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PhantomError> {
    mammo_io::write_atomic(path, bytes).map_err(|source| PhantomError::Io {
        path: path.to_owned(),
        source,
    })
}
