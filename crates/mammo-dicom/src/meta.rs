//! Header facts of an image, read once from the data set.

use dicom_core::{Tag, value::Value};
use dicom_dictionary_std::{tags, uids};
use dicom_object::DefaultDicomObject;
use serde::Serialize;

use crate::lut::{LookupTable, ModalityLut, VoiFunction, VoiTransform, Window};

/// Photometric Interpretation (PS3.3 C.7.6.3.1.2), for the grayscale images mammo renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Photometric {
    /// Minimum value displayed white: rendered inverted.
    Monochrome1,
    /// Minimum value displayed black.
    Monochrome2,
    /// Anything else (RGB, palette, YBR): decoded but not rendered.
    Other(String),
}

impl Photometric {
    fn parse(s: &str) -> Self {
        match s.trim() {
            "MONOCHROME1" => Self::Monochrome1,
            "MONOCHROME2" => Self::Monochrome2,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The DICOM spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Monochrome1 => "MONOCHROME1",
            Self::Monochrome2 => "MONOCHROME2",
            Self::Other(s) => s,
        }
    }
}

/// How the pixel data of a transfer syntax is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TransferSyntaxKind {
    /// Native (uncompressed) pixel data: implicit/explicit VR little endian, deflated.
    Native,
    /// JPEG 2000 / HTJ2K (PS3.5 A.4.4, A.4.11): decoded by OpenJPEG, reduce-capable.
    Jpeg2000,
    /// Any other encapsulated syntax (JPEG lossless, JPEG-LS, RLE, ...): dicom-pixeldata.
    Encapsulated,
}

impl TransferSyntaxKind {
    /// How the pixel data of transfer syntax `uid` is decoded (unknown syntaxes are
    /// [`Self::Encapsulated`]; whether they decode at all is
    /// [`crate::can_decode_transfer_syntax`]).
    pub fn of(uid: &str) -> Self {
        match uid {
            uids::JPEG2000_LOSSLESS | uids::JPEG2000 | uids::JPEG2000MC_LOSSLESS | uids::JPEG2000MC
            | uids::HTJ2K_LOSSLESS | uids::HTJ2K_LOSSLESS_RPCL | uids::HTJ2K => Self::Jpeg2000,
            uids::IMPLICIT_VR_LITTLE_ENDIAN
            | uids::EXPLICIT_VR_LITTLE_ENDIAN
            | "1.2.840.10008.1.2.2" // Explicit VR Big Endian (retired)
            | uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN => Self::Native,
            _ => Self::Encapsulated,
        }
    }
}

/// The facts of an image header that decoding and rendering need.
#[derive(Debug, Clone, Serialize)]
pub struct ImageMeta {
    pub transfer_syntax: String,
    pub kind: TransferSyntaxKind,
    pub rows: u32,
    pub columns: u32,
    pub frames: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    /// Pixel Representation 1: two's complement stored values.
    pub signed: bool,
    pub photometric: Photometric,
    pub modality_lut: ModalityLut,
    /// VOI transforms in the order a viewer offers them: the windows (Window Center /
    /// Width, with VOI LUT Function), then the VOI LUT Sequence items.
    pub voi: Vec<VoiTransform>,
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub patient_id: Option<String>,
    /// Image Laterality (0020,0062), else Laterality (0020,0060).
    pub laterality: Option<String>,
    pub view_position: Option<String>,
}

type Obj = DefaultDicomObject;

fn opt_str(obj: &Obj, tag: Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok().flatten()?;
    let s = e
        .to_str()
        .ok()?
        .trim()
        .trim_end_matches('\0')
        .trim()
        .to_owned();
    (!s.is_empty()).then_some(s)
}

fn req_u32(obj: &Obj, tag: Tag, name: &str) -> Result<u32, String> {
    let e = obj
        .element_opt(tag)
        .map_err(|e| format!("{name} {tag}: {e}"))?
        .ok_or_else(|| format!("missing {name} {tag}"))?;
    e.to_int::<u32>()
        .map_err(|e| format!("{name} {tag} is not a number: {e}"))
}

fn opt_u32(obj: &Obj, tag: Tag, name: &str) -> Result<Option<u32>, String> {
    match obj
        .element_opt(tag)
        .map_err(|e| format!("{name} {tag}: {e}"))?
    {
        None => Ok(None),
        Some(e) if dicom_core::header::HasLength::is_empty(e) => Ok(None),
        Some(e) => e
            .to_int::<u32>()
            .map(Some)
            .map_err(|e| format!("{name} {tag} is not a number: {e}")),
    }
}

fn opt_f64s(obj: &Obj, tag: Tag) -> Result<Vec<f64>, String> {
    match obj.element_opt(tag).map_err(|e| format!("{tag}: {e}"))? {
        None => Ok(vec![]),
        Some(e) if dicom_core::header::HasLength::is_empty(e) => Ok(vec![]),
        Some(e) => e
            .to_multi_float64()
            .map_err(|err| format!("{tag} is not numeric: {err}")),
    }
}

impl ImageMeta {
    pub(crate) fn from_object(obj: &Obj) -> Result<Self, String> {
        let transfer_syntax = obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .trim()
            .to_owned();
        let kind = TransferSyntaxKind::of(&transfer_syntax);
        if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
            return Err("no Pixel Data (7FE0,0010): not an image".into());
        }
        let rows = req_u32(obj, tags::ROWS, "Rows")?;
        let columns = req_u32(obj, tags::COLUMNS, "Columns")?;
        if rows == 0 || columns == 0 {
            return Err(format!("empty image: Rows {rows}, Columns {columns}"));
        }
        let frames = opt_u32(obj, tags::NUMBER_OF_FRAMES, "Number of Frames")?
            .unwrap_or(1)
            .max(1);
        let samples_per_pixel =
            opt_u32(obj, tags::SAMPLES_PER_PIXEL, "Samples per Pixel")?.unwrap_or(1) as u16;
        let bits_allocated = req_u32(obj, tags::BITS_ALLOCATED, "Bits Allocated")? as u16;
        let bits_stored = opt_u32(obj, tags::BITS_STORED, "Bits Stored")?
            .map(|v| v as u16)
            .unwrap_or(bits_allocated);
        let high_bit = opt_u32(obj, tags::HIGH_BIT, "High Bit")?
            .map(|v| v as u16)
            .unwrap_or(bits_stored.saturating_sub(1));
        if !matches!(bits_allocated, 1 | 8 | 16 | 32) {
            return Err(format!(
                "Bits Allocated {bits_allocated} is not 1, 8, 16 or 32"
            ));
        }
        if bits_stored == 0 || bits_stored > bits_allocated {
            return Err(format!(
                "Bits Stored {bits_stored} does not fit Bits Allocated {bits_allocated}"
            ));
        }
        let signed =
            opt_u32(obj, tags::PIXEL_REPRESENTATION, "Pixel Representation")?.unwrap_or(0) == 1;
        let photometric = Photometric::parse(
            &opt_str(obj, tags::PHOTOMETRIC_INTERPRETATION)
                .ok_or("missing Photometric Interpretation (0028,0004)")?,
        );

        // Modality LUT module, PS3.3 C.11.1: a Modality LUT Sequence or Rescale Slope/Intercept.
        let modality_lut = match read_lut_sequence(obj, tags::MODALITY_LUT_SEQUENCE)?
            .into_iter()
            .next()
        {
            Some(lut) => ModalityLut::Lut(lut),
            None => {
                let slope = opt_f64s(obj, tags::RESCALE_SLOPE)?
                    .first()
                    .copied()
                    .unwrap_or(1.0);
                let intercept = opt_f64s(obj, tags::RESCALE_INTERCEPT)?
                    .first()
                    .copied()
                    .unwrap_or(0.0);
                if slope == 0.0 || !slope.is_finite() || !intercept.is_finite() {
                    return Err(format!(
                        "unusable Rescale Slope {slope} / Intercept {intercept}"
                    ));
                }
                ModalityLut::Rescale { slope, intercept }
            }
        };

        // VOI LUT module, PS3.3 C.11.2.
        let centers = opt_f64s(obj, tags::WINDOW_CENTER)?;
        let widths = opt_f64s(obj, tags::WINDOW_WIDTH)?;
        let function = match opt_str(obj, tags::VOILUT_FUNCTION).as_deref() {
            None | Some("LINEAR") => VoiFunction::Linear,
            Some("LINEAR_EXACT") => VoiFunction::LinearExact,
            Some("SIGMOID") => VoiFunction::Sigmoid,
            Some(other) => {
                return Err(format!(
                    "VOI LUT Function (0028,1056) {other:?} is not LINEAR, LINEAR_EXACT or SIGMOID"
                ));
            }
        };
        let mut voi: Vec<VoiTransform> = Vec::new();
        for (&center, &width) in centers.iter().zip(&widths) {
            let window = Window {
                center,
                width,
                function,
            };
            // An invalid window (PS3.3 C.11.2.1.2: width >= 1 for LINEAR, > 0 otherwise) is
            // skipped, as viewers do, rather than failing the whole image.
            if window.is_valid() {
                voi.push(VoiTransform::Window(window));
            }
        }
        for lut in read_lut_sequence(obj, tags::VOILUT_SEQUENCE)? {
            voi.push(VoiTransform::Lut(lut));
        }

        Ok(Self {
            transfer_syntax,
            kind,
            rows,
            columns,
            frames,
            samples_per_pixel,
            bits_allocated,
            bits_stored,
            high_bit,
            signed,
            photometric,
            modality_lut,
            voi,
            sop_class_uid: opt_str(obj, tags::SOP_CLASS_UID),
            sop_instance_uid: opt_str(obj, tags::SOP_INSTANCE_UID),
            patient_id: opt_str(obj, tags::PATIENT_ID),
            laterality: opt_str(obj, tags::IMAGE_LATERALITY)
                .or_else(|| opt_str(obj, tags::LATERALITY)),
            view_position: opt_str(obj, tags::VIEW_POSITION),
        })
    }

    /// The range of stored values Bits Stored and Pixel Representation allow.
    pub fn stored_range(&self) -> (i32, i32) {
        let b = self.bits_stored.min(31) as u32;
        if self.signed {
            (-(1i32 << (b - 1)), (1i32 << (b - 1)) - 1)
        } else {
            (0, ((1i64 << b) - 1) as i32)
        }
    }
}

/// Reads the items of a LUT sequence (Modality or VOI): LUT Descriptor + LUT Data,
/// PS3.3 C.11.1.1 / C.11.2.1.1.
fn read_lut_sequence(obj: &Obj, tag: Tag) -> Result<Vec<LookupTable>, String> {
    let Some(seq) = obj.element_opt(tag).map_err(|e| format!("{tag}: {e}"))? else {
        return Ok(vec![]);
    };
    let Some(items) = seq.value().items() else {
        return Ok(vec![]);
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let desc_el = item
            .element_opt(tags::LUT_DESCRIPTOR)
            .ok()
            .flatten()
            .ok_or_else(|| format!("{tag} item {i}: missing LUT Descriptor"))?;
        let desc = desc_el
            .to_multi_int::<i64>()
            .map_err(|e| format!("{tag} item {i}: LUT Descriptor: {e}"))?;
        if desc.len() != 3 {
            return Err(format!(
                "{tag} item {i}: LUT Descriptor has {} values, not 3",
                desc.len()
            ));
        }
        // Number of entries: 0 means 2^16 (C.11.1.1.1).
        let entries = if desc[0] == 0 {
            65536
        } else {
            (desc[0] & 0xFFFF) as usize
        };
        // The first mapped value is US or SS to match Pixel Representation; a value that
        // reads as >= 2^15 from a US descriptor of a signed image wraps, as the standard says.
        let first_mapped = desc[1] as i32;
        let bits = desc[2] as u16;
        if !(8..=16).contains(&bits) {
            return Err(format!(
                "{tag} item {i}: LUT Descriptor bits {bits} outside 8..=16"
            ));
        }
        let data_el = item
            .element_opt(tags::LUT_DATA)
            .ok()
            .flatten()
            .ok_or_else(|| format!("{tag} item {i}: missing LUT Data"))?;
        let words: Vec<u16> = match data_el.value() {
            Value::Primitive(p) => match p.to_multi_int::<u16>() {
                Ok(v) if v.len() >= entries || v.len() * 2 < entries => v,
                _ => {
                    let bytes = p.to_bytes();
                    bytes
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect()
                }
            },
            _ => return Err(format!("{tag} item {i}: LUT Data is not a primitive value")),
        };
        let data: Vec<u16> = if words.len() >= entries {
            words[..entries].to_vec()
        } else if bits == 8 && words.len() * 2 >= entries {
            // Two 8-bit entries packed per 16-bit word (low byte first).
            words
                .iter()
                .flat_map(|w| [w & 0xFF, w >> 8])
                .take(entries)
                .collect()
        } else {
            return Err(format!(
                "{tag} item {i}: LUT Data has {} values, descriptor says {entries}",
                words.len()
            ));
        };
        out.push(LookupTable {
            first_mapped,
            bits,
            data,
        });
    }
    Ok(out)
}
