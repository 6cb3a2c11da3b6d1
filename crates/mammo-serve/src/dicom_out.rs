//! DICOM results a PACS can store, in a new series of the source study (Study Instance UID
//! kept, new Series and SOP Instance UIDs, patient and study attributes copied):
//!
//! * per view a Secondary Capture Image (PS3.3 A.8.1) with the heat map and the centred box
//!   burned in, at display size, RGB;
//! * one Comprehensive SR (PS3.3 A.35.3) with, per breast, its laterality, its probability
//!   of cancer and, per image, the centred box as a closed POLYLINE SCOORD selected from the
//!   source image.
//!
//! New UIDs are UUID-derived under the 2.25 root (PS3.5 B.2).

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use mammo_explain::BBox;
use mammo_explain::render::{Rgb, draw_box};

use crate::ServeError;
use crate::analysis::{ImageAnalysis, Study};

/// Implementation Class UID of `mammo serve` (PS3.7 D.3.3.2), under the 2.25 root.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.304067882461318288062370135007357629649";

/// Heat map weight where it is drawn over the picture (`mammo explain`'s overlay).
pub const BURN_ALPHA: f32 = 0.4;

/// A new UID: `2.25.` and a random (version 4) UUID as a decimal integer (PS3.5 B.2).
pub fn new_uid() -> String {
    format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
}

/// Today's date and time in UTC as DICOM DA (`YYYYMMDD`) and TM (`HHMMSS`).
pub fn now_da_tm() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms", civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// UIDs and numbers of one study's results.
#[derive(Debug, Clone)]
pub struct ResultUids {
    pub sc_series: String,
    /// One per image.
    pub sc_instances: Vec<String>,
    pub sr_series: String,
    pub sr_instance: String,
}

impl ResultUids {
    pub fn new(images: usize) -> Self {
        Self {
            sc_series: new_uid(),
            sc_instances: (0..images).map(|_| new_uid()).collect(),
            sr_series: new_uid(),
            sr_instance: new_uid(),
        }
    }
}

/// Series numbers of the results, high enough not to clash with a modality's own series.
const SC_SERIES_NUMBER: &str = "9001";
const SR_SERIES_NUMBER: &str = "9002";

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, value.into()));
}

fn put_seq(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(
        tag,
        VR::SQ,
        Value::from(DataSetSequence::from(items)),
    ));
}

/// Patient and General Study modules (copied; Type 2 attributes the source lacks are
/// present and empty), General Equipment, and the SOP Common UIDs.
fn common(study: &Study, sop_class: &str, sop_instance: &str) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    for e in &study.copied {
        obj.put(e.clone());
    }
    for (tag, vr) in [
        (tags::PATIENT_NAME, VR::PN),
        (tags::PATIENT_ID, VR::LO),
        (tags::PATIENT_BIRTH_DATE, VR::DA),
        (tags::PATIENT_SEX, VR::CS),
        (tags::STUDY_DATE, VR::DA),
        (tags::STUDY_TIME, VR::TM),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        (tags::STUDY_ID, VR::SH),
        (tags::ACCESSION_NUMBER, VR::SH),
    ] {
        if obj.get(tag).is_none() {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
        }
    }
    put(
        &mut obj,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        study.study_instance_uid.as_str(),
    );
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_instance);
    put(&mut obj, tags::MANUFACTURER, VR::LO, "mammo");
    put(
        &mut obj,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        concat!("mammo serve ", env!("CARGO_PKG_VERSION")),
    );
    obj
}

fn to_bytes(obj: InMemDicomObject, what: &'static str) -> Result<Vec<u8>, ServeError> {
    let err = |cause: Box<dyn std::error::Error + Send + Sync>| ServeError::Write { what, cause };
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name("MAMMO_SERVE"),
        )
        .map_err(|e| err(e.into()))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).map_err(|e| err(e.into()))?;
    Ok(bytes)
}

/// The view's picture through its default window, the heat map blended in where the model
/// saw the breast ([`BURN_ALPHA`]), and the centred box in green: RGB at display size.
pub fn burned_in(image: &ImageAnalysis) -> Rgb {
    let d = &image.display;
    let grey = d.grey();
    let mut data = Vec::with_capacity(grey.len() * 3);
    for (&g, &h) in grey.iter().zip(&d.heat) {
        let g = g.clamp(0.0, 1.0) * 255.0;
        if h < 0.0 {
            let v = g.round() as u8;
            data.extend_from_slice(&[v, v, v]);
        } else {
            for c in mammo_explain::render::jet(h) {
                data.push(((1.0 - BURN_ALPHA) * g + BURN_ALPHA * c as f32).round() as u8);
            }
        }
    }
    let mut rgb = Rgb {
        width: d.width as usize,
        height: d.height as usize,
        data,
    };
    let (sx, sy) = (
        d.width as f64 / image.columns as f64,
        d.height as f64 / image.rows as f64,
    );
    let [x0, y0, x1, y1] = image.box_source;
    let thickness = (d.width.max(d.height) as usize / 256).max(1);
    draw_box(
        &mut rgb,
        &BBox {
            x0: x0 * sx,
            y0: y0 * sy,
            x1: x1 * sx,
            y1: y1 * sy,
        },
        [40, 255, 40],
        thickness,
    );
    rgb
}

/// The Secondary Capture of image `index` of `study` (PS3.3 A.8.1).
pub fn secondary_capture(
    study: &Study,
    index: usize,
    uids: &ResultUids,
    when: &(String, String),
) -> Result<Vec<u8>, ServeError> {
    let image = &study.images[index];
    let rgb = burned_in(image);
    let mut obj = common(
        study,
        uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
        &uids.sc_instances[index],
    );
    // General Series, SC Equipment, General Image, SC Image.
    put(&mut obj, tags::MODALITY, VR::CS, "OT");
    put(
        &mut obj,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        uids.sc_series.as_str(),
    );
    put(&mut obj, tags::SERIES_NUMBER, VR::IS, SC_SERIES_NUMBER);
    put(
        &mut obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "mammo heat maps (not for diagnosis)",
    );
    put(&mut obj, tags::CONVERSION_TYPE, VR::CS, "WSD");
    put(
        &mut obj,
        tags::INSTANCE_NUMBER,
        VR::IS,
        (index + 1).to_string(),
    );
    obj.put(DataElement::new(
        tags::PATIENT_ORIENTATION,
        VR::CS,
        PrimitiveValue::Empty,
    ));
    put(&mut obj, tags::CONTENT_DATE, VR::DA, when.0.as_str());
    put(&mut obj, tags::CONTENT_TIME, VR::TM, when.1.as_str());
    put(
        &mut obj,
        tags::DATE_OF_SECONDARY_CAPTURE,
        VR::DA,
        when.0.as_str(),
    );
    put(
        &mut obj,
        tags::TIME_OF_SECONDARY_CAPTURE,
        VR::TM,
        when.1.as_str(),
    );
    obj.put(DataElement::new(
        tags::IMAGE_TYPE,
        VR::CS,
        PrimitiveValue::Strs(vec!["DERIVED".to_string(), "SECONDARY".to_string()].into()),
    ));
    put(
        &mut obj,
        tags::DERIVATION_DESCRIPTION,
        VR::ST,
        format!(
            "Grad-CAM heat map of the mammo fold ensemble (probability {:.4}) over the source at \
             its first VOI window; green: centred box at the peak",
            image.probability
        ),
    );
    put(&mut obj, tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
    let mut source = InMemDicomObject::new_empty();
    put(
        &mut source,
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        image.sop_class_uid.as_str(),
    );
    put(
        &mut source,
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        image.sop_instance_uid.as_str(),
    );
    put_seq(&mut obj, tags::SOURCE_IMAGE_SEQUENCE, vec![source]);
    if let Some(l) = &image.laterality {
        put(&mut obj, tags::IMAGE_LATERALITY, VR::CS, l.as_str());
    }
    // Image Pixel (PS3.3 C.7.6.3): 8-bit RGB, colour-by-pixel.
    put(&mut obj, tags::SAMPLES_PER_PIXEL, VR::US, 3u16);
    put(&mut obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB");
    put(&mut obj, tags::PLANAR_CONFIGURATION, VR::US, 0u16);
    put(&mut obj, tags::ROWS, VR::US, rgb.height as u16);
    put(&mut obj, tags::COLUMNS, VR::US, rgb.width as u16);
    put(&mut obj, tags::BITS_ALLOCATED, VR::US, 8u16);
    put(&mut obj, tags::BITS_STORED, VR::US, 8u16);
    put(&mut obj, tags::HIGH_BIT, VR::US, 7u16);
    put(&mut obj, tags::PIXEL_REPRESENTATION, VR::US, 0u16);
    let mut pixels = rgb.data;
    if pixels.len() % 2 == 1 {
        pixels.push(0); // OB values have even length
    }
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(pixels.into()),
    ));
    to_bytes(obj, "Secondary Capture")
}

/// A coded concept: (code value, coding scheme, meaning).
type Code = (&'static str, &'static str, &'static str);

const REPORT: Code = ("126000", "DCM", "Imaging Measurement Report");
const ALGORITHM_NAME: Code = ("111001", "DCM", "Algorithm Name");
const ALGORITHM_VERSION: Code = ("111003", "DCM", "Algorithm Version");
const MEASUREMENT_GROUP: Code = ("125007", "DCM", "Measurement Group");
const LATERALITY: Code = ("272741003", "SCT", "Laterality");
const LEFT: Code = ("7771000", "SCT", "Left");
const RIGHT: Code = ("24028007", "SCT", "Right");
const PROBABILITY_OF_CANCER: Code = ("111047", "DCM", "Probability of cancer");
const NO_UNITS: Code = ("1", "UCUM", "no units");
const IMAGE_REGION: Code = ("111030", "DCM", "Image Region");

fn code_item(c: Code) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put(&mut o, tags::CODE_VALUE, VR::SH, c.0);
    put(&mut o, tags::CODING_SCHEME_DESIGNATOR, VR::SH, c.1);
    put(&mut o, tags::CODE_MEANING, VR::LO, c.2);
    o
}

/// A content item (PS3.3 C.17.3): relationship, value type and concept name.
fn item(relationship: &str, value_type: &str, name: Option<Code>) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put(&mut o, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
    put(&mut o, tags::VALUE_TYPE, VR::CS, value_type);
    if let Some(c) = name {
        put_seq(&mut o, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code_item(c)]);
    }
    o
}

fn text_item(name: Code, value: &str) -> InMemDicomObject {
    let mut o = item("CONTAINS", "TEXT", Some(name));
    put(&mut o, tags::TEXT_VALUE, VR::UT, value);
    o
}

fn referenced_sop(class: &str, instance: &str) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put(&mut o, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class);
    put(&mut o, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance);
    o
}

/// A decimal string (DS, at most 16 characters) for a probability.
fn ds_probability(p: f64) -> String {
    let s = format!("{:.6}", p.clamp(0.0, 1.0));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The study's Comprehensive SR (PS3.3 A.35.3).
pub fn structured_report(
    study: &Study,
    model: &str,
    uids: &ResultUids,
    when: &(String, String),
) -> Result<Vec<u8>, ServeError> {
    let mut obj = common(
        study,
        uids::COMPREHENSIVE_SR_STORAGE,
        uids.sr_instance.as_str(),
    );
    // SR Document Series (PS3.3 C.17.1).
    put(&mut obj, tags::MODALITY, VR::CS, "SR");
    put(
        &mut obj,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        uids.sr_series.as_str(),
    );
    put(&mut obj, tags::SERIES_NUMBER, VR::IS, SR_SERIES_NUMBER);
    put(
        &mut obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "mammo per-breast probability (not for diagnosis)",
    );
    put_seq(
        &mut obj,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        vec![],
    );
    // SR Document General (PS3.3 C.17.2).
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    put(&mut obj, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put(&mut obj, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    put(&mut obj, tags::CONTENT_DATE, VR::DA, when.0.as_str());
    put(&mut obj, tags::CONTENT_TIME, VR::TM, when.1.as_str());
    put_seq(&mut obj, tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]);
    // The source images, by series.
    let mut series: Vec<(String, Vec<InMemDicomObject>)> = Vec::new();
    for im in &study.images {
        let uid = im.series_instance_uid.clone().unwrap_or_default();
        let r = referenced_sop(&im.sop_class_uid, &im.sop_instance_uid);
        match series.iter_mut().find(|(s, _)| *s == uid) {
            Some((_, v)) => v.push(r),
            None => series.push((uid, vec![r])),
        }
    }
    let series_items = series
        .into_iter()
        .filter(|(uid, _)| !uid.is_empty())
        .map(|(uid, refs)| {
            let mut s = InMemDicomObject::new_empty();
            put(&mut s, tags::SERIES_INSTANCE_UID, VR::UI, uid.as_str());
            put_seq(&mut s, tags::REFERENCED_SOP_SEQUENCE, refs);
            s
        })
        .collect();
    let mut evidence = InMemDicomObject::new_empty();
    put(
        &mut evidence,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        study.study_instance_uid.as_str(),
    );
    put_seq(
        &mut evidence,
        tags::REFERENCED_SERIES_SEQUENCE,
        series_items,
    );
    put_seq(
        &mut obj,
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![evidence],
    );

    // SR Document Content (PS3.3 C.17.3): the root container.
    put(&mut obj, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_seq(
        &mut obj,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item(REPORT)],
    );
    put(&mut obj, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    let mut content = vec![
        text_item(ALGORITHM_NAME, model),
        text_item(ALGORITHM_VERSION, env!("CARGO_PKG_VERSION")),
    ];
    for breast in &study.breasts {
        let mut group = item("CONTAINS", "CONTAINER", Some(MEASUREMENT_GROUP));
        put(&mut group, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
        let mut side = item("HAS CONCEPT MOD", "CODE", Some(LATERALITY));
        let value = if breast.laterality == "L" {
            LEFT
        } else {
            RIGHT
        };
        put_seq(
            &mut side,
            tags::CONCEPT_CODE_SEQUENCE,
            vec![code_item(value)],
        );
        let mut num = item("CONTAINS", "NUM", Some(PROBABILITY_OF_CANCER));
        let mut measured = InMemDicomObject::new_empty();
        put(
            &mut measured,
            tags::NUMERIC_VALUE,
            VR::DS,
            ds_probability(breast.probability),
        );
        put_seq(
            &mut measured,
            tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
            vec![code_item(NO_UNITS)],
        );
        put_seq(&mut num, tags::MEASURED_VALUE_SEQUENCE, vec![measured]);
        let mut children = vec![side, num];
        for &k in &breast.images {
            let im = &study.images[k];
            let [x0, y0, x1, y1] = im.box_source.map(|v| v as f32);
            let mut region = item("CONTAINS", "SCOORD", Some(IMAGE_REGION));
            // PS3.3 C.18.6.1.2: column\row pairs, (0, 0) the top-left corner of the
            // top-left pixel; a closed polyline repeats its first point.
            region.put(DataElement::new(
                tags::GRAPHIC_DATA,
                VR::FL,
                PrimitiveValue::F32(vec![x0, y0, x1, y0, x1, y1, x0, y1, x0, y0].into()),
            ));
            put(&mut region, tags::GRAPHIC_TYPE, VR::CS, "POLYLINE");
            let mut source = item("SELECTED FROM", "IMAGE", None);
            put_seq(
                &mut source,
                tags::REFERENCED_SOP_SEQUENCE,
                vec![referenced_sop(&im.sop_class_uid, &im.sop_instance_uid)],
            );
            put_seq(&mut region, tags::CONTENT_SEQUENCE, vec![source]);
            children.push(region);
        }
        put_seq(&mut group, tags::CONTENT_SEQUENCE, children);
        content.push(group);
    }
    put_seq(&mut obj, tags::CONTENT_SEQUENCE, content);
    to_bytes(obj, "structured report")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_and_fresh() {
        let (a, b) = (new_uid(), new_uid());
        assert_ne!(a, b);
        for u in [&a, &b, &IMPLEMENTATION_CLASS_UID.to_string()] {
            assert!(u.len() <= 64, "{u}");
            assert!(u.starts_with("2.25."));
            let tail = &u[5..];
            assert!(tail.chars().all(|c| c.is_ascii_digit()), "{u}");
            assert!(!tail.starts_with('0') || tail == "0", "{u}");
        }
    }

    #[test]
    fn dates_are_dicom_da_and_tm() {
        let (da, tm) = now_da_tm();
        assert_eq!((da.len(), tm.len()), (8, 6));
        assert!(da.as_str() >= "20250101", "{da}");
    }

    #[test]
    fn probabilities_fit_a_decimal_string() {
        assert_eq!(ds_probability(0.5), "0.5");
        assert_eq!(ds_probability(1.0), "1");
        assert_eq!(ds_probability(0.1234567), "0.123457");
        assert!(ds_probability(1e-9).len() <= 16);
    }
}
