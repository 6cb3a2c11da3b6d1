//! Stored pixel values of one frame.

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;

use crate::error::Cause;
use crate::meta::{ImageMeta, TransferSyntaxKind};

pub(crate) const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// The stored values of one frame (before any modality or VOI transform), row-major,
/// samples interleaved. Values are sign-extended when Pixel Representation is 1 and masked
/// to Bits Stored otherwise, as PS3.5 8.1.1 prescribes and pydicom returns them.
#[derive(Debug, Clone)]
pub struct StoredFrame {
    pub width: u32,
    pub height: u32,
    pub samples_per_pixel: u16,
    /// The reduced-resolution factor actually applied: the image is `2^reduce` times smaller
    /// than Rows x Columns (rounded up). Always 0 for sources other than JPEG 2000.
    pub reduce: u32,
    pub data: Vec<i32>,
}

impl StoredFrame {
    /// Smallest and largest value (0, 0 for an empty frame).
    pub fn min_max(&self) -> (i32, i32) {
        let mut it = self.data.iter().copied();
        let first = it.next().unwrap_or(0);
        it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }
}

pub(crate) fn decode_frame(
    obj: &DefaultDicomObject,
    meta: &ImageMeta,
    frame: u32,
    reduce: u32,
    threads: u32,
) -> Result<StoredFrame, Cause> {
    if frame >= meta.frames {
        return Err(format!("frame {frame} requested, the image has {}", meta.frames).into());
    }
    match meta.kind {
        TransferSyntaxKind::Jpeg2000 => decode_jpeg2000(obj, meta, frame, reduce, threads),
        TransferSyntaxKind::Encapsulated if meta.transfer_syntax == RLE_LOSSLESS => {
            let bytes = frame_bytes(obj, meta, frame)?;
            let raw = crate::rle::decode_frame(
                &bytes,
                meta.rows,
                meta.columns,
                meta.samples_per_pixel,
                meta.bits_allocated,
            )?;
            let n = meta.rows as usize * meta.columns as usize * meta.samples_per_pixel as usize;
            Ok(StoredFrame {
                width: meta.columns,
                height: meta.rows,
                samples_per_pixel: meta.samples_per_pixel,
                reduce: 0,
                data: unpack(&raw, n, meta)?,
            })
        }
        TransferSyntaxKind::Native | TransferSyntaxKind::Encapsulated => {
            // The other decoders are third-party code on untrusted bytes: a panic in one is
            // this file's error, not the end of a batch.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                decode_generic(obj, meta, frame)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("no message");
                Err(format!("the pixel data decoder failed on this file ({what})").into())
            })
        }
    }
}

/// Checks, before anything is decoded, that Pixel Data has the shape the header promises:
/// native data holds every byte of every frame; encapsulated data has fragments that can be
/// told apart per frame. Each malformed kind gets its own reason.
pub(crate) fn check_pixel_data(obj: &DefaultDicomObject, meta: &ImageMeta) -> Result<(), String> {
    let pixel = obj
        .element(tags::PIXEL_DATA)
        .map_err(|e| format!("Pixel Data: {e}"))?;
    match (meta.kind, pixel.value()) {
        (TransferSyntaxKind::Native, Value::Primitive(p)) => {
            let values = meta.frames as u64
                * meta.rows as u64
                * meta.columns as u64
                * meta.samples_per_pixel.max(1) as u64;
            let need = if meta.bits_allocated == 1 {
                values.div_ceil(8)
            } else {
                values * (meta.bits_allocated as u64 / 8)
            };
            let have = p.calculate_byte_len() as u64;
            if have < need {
                return Err(format!(
                    "Pixel Data holds {have} bytes; {} frame(s) of {} x {} x {} sample(s) at \
                     {} bits need {need}",
                    meta.frames,
                    meta.columns,
                    meta.rows,
                    meta.samples_per_pixel,
                    meta.bits_allocated
                ));
            }
            Ok(())
        }
        (TransferSyntaxKind::Native, Value::PixelSequence(_)) => Err(format!(
            "Pixel Data is encapsulated (fragments) but the transfer syntax {} is native",
            meta.transfer_syntax
        )),
        (
            TransferSyntaxKind::Jpeg2000 | TransferSyntaxKind::Encapsulated,
            Value::PixelSequence(seq),
        ) => {
            let fragments = seq.fragments();
            if fragments.iter().all(|f| f.is_empty()) {
                return Err(
                    "encapsulated Pixel Data has no fragments (no compressed frame)".into(),
                );
            }
            frames_separable(meta.frames, fragments.len(), seq.offset_table().len())
        }
        (TransferSyntaxKind::Jpeg2000 | TransferSyntaxKind::Encapsulated, Value::Primitive(_)) => {
            Err(format!(
                "Pixel Data is not encapsulated although the transfer syntax {} is",
                meta.transfer_syntax
            ))
        }
        (_, Value::Sequence(_)) => Err("Pixel Data is a sequence of items, not pixels".into()),
    }
}

/// Whether `frames` frames can be told apart in `fragments` fragments with a Basic Offset
/// Table of `table` entries (PS3.5 A.4): one frame, one fragment per frame, or a full table.
fn frames_separable(frames: u32, fragments: usize, table: usize) -> Result<(), String> {
    if frames > 1 && fragments != frames as usize && table != frames as usize {
        return Err(format!(
            "{frames} frames in {fragments} fragments and no usable Basic Offset Table \
             ({table} entries)"
        ));
    }
    Ok(())
}

/// The encapsulated bytes of one frame (PS3.5 A.4): with one frame, all fragments joined;
/// with as many fragments as frames, one each; otherwise by the Basic Offset Table.
fn frame_bytes(obj: &DefaultDicomObject, meta: &ImageMeta, frame: u32) -> Result<Vec<u8>, String> {
    let pixel = obj
        .element(tags::PIXEL_DATA)
        .map_err(|e| format!("Pixel Data: {e}"))?;
    let Value::PixelSequence(seq) = pixel.value() else {
        return Err("Pixel Data is not encapsulated although the transfer syntax is".into());
    };
    let fragments = seq.fragments();
    if fragments.is_empty() {
        return Err("encapsulated Pixel Data has no fragments".into());
    }
    if meta.frames == 1 {
        return Ok(fragments.iter().flat_map(|f| f.iter().copied()).collect());
    }
    if fragments.len() == meta.frames as usize {
        return Ok(fragments[frame as usize].clone());
    }
    let table = seq.offset_table();
    frames_separable(meta.frames, fragments.len(), table.len())?;
    // Offsets count bytes from the first fragment's item tag; each item adds an 8-byte header.
    let start = table[frame as usize] as usize;
    let end = table
        .get(frame as usize + 1)
        .map(|&v| v as usize)
        .unwrap_or(usize::MAX);
    let mut pos = 0usize;
    let mut out = Vec::new();
    for f in fragments {
        if pos >= start && pos < end {
            out.extend_from_slice(f);
        }
        pos += 8 + f.len();
    }
    if out.is_empty() {
        return Err(format!(
            "Basic Offset Table points past the fragments for frame {frame}"
        ));
    }
    Ok(out)
}

fn decode_jpeg2000(
    obj: &DefaultDicomObject,
    meta: &ImageMeta,
    frame: u32,
    reduce: u32,
    threads: u32,
) -> Result<StoredFrame, Cause> {
    let mut bytes = frame_bytes(obj, meta, frame)?;
    // Fragments are padded to even length; trailing zero padding after EOC is harmless.
    if let Some(start) = find_jpeg2000_start(&bytes)
        && start > 0
    {
        bytes.drain(..start);
    }
    // The codestream's own size (SIZ) must agree with the DICOM header before anything is
    // allocated for it: a small file can claim a huge image in either place.
    let header = mammo_j2k::read_header(&bytes)?;
    if header.width != meta.columns || header.height != meta.rows {
        return Err(format!(
            "JPEG 2000 codestream (SIZ) is {}x{}, the DICOM header says {}x{}",
            header.width, header.height, meta.columns, meta.rows
        )
        .into());
    }
    if header.components != meta.samples_per_pixel as u32 {
        return Err(format!(
            "JPEG 2000 codestream has {} components, Samples per Pixel is {}",
            header.components, meta.samples_per_pixel
        )
        .into());
    }
    let decoded = mammo_j2k::decode(
        &bytes,
        &mammo_j2k::DecodeOptions {
            reduce,
            threads: threads.max(1),
        },
    )?;
    let expect_w = meta.columns.div_ceil(1 << decoded.reduce);
    let expect_h = meta.rows.div_ceil(1 << decoded.reduce);
    if decoded.width != expect_w || decoded.height != expect_h {
        return Err(format!(
            "JPEG 2000 stream is {}x{} at reduce {}, the header says {}x{} ({}x{} expected)",
            decoded.width,
            decoded.height,
            decoded.reduce,
            meta.columns,
            meta.rows,
            expect_w,
            expect_h
        )
        .into());
    }
    if decoded.components != meta.samples_per_pixel as u32 {
        return Err(format!(
            "JPEG 2000 stream has {} components, Samples per Pixel is {}",
            decoded.components, meta.samples_per_pixel
        )
        .into());
    }
    let mut data = decoded.data;
    // A signed image whose codestream was written unsigned: reinterpret at Bits Stored.
    if meta.signed && !decoded.signed {
        let b = meta.bits_stored as u32;
        for v in &mut data {
            *v = sign_extend(*v as u32, b);
        }
    }
    Ok(StoredFrame {
        width: decoded.width,
        height: decoded.height,
        samples_per_pixel: meta.samples_per_pixel,
        reduce: decoded.reduce,
        data,
    })
}

/// Some writers put bytes before the codestream/JP2 signature; find where it starts.
fn find_jpeg2000_start(bytes: &[u8]) -> Option<usize> {
    let limit = bytes.len().min(64);
    (0..limit).find(|&i| mammo_j2k::detect_container(&bytes[i..]).is_some())
}

fn decode_generic(
    obj: &DefaultDicomObject,
    meta: &ImageMeta,
    frame: u32,
) -> Result<StoredFrame, Cause> {
    let px = obj.decode_pixel_data_frame(frame)?;
    let raw = px.data();
    let samples = meta.samples_per_pixel as usize;
    let n = meta.rows as usize * meta.columns as usize * samples;
    let data = unpack(raw, n, meta)?;
    Ok(StoredFrame {
        width: meta.columns,
        height: meta.rows,
        samples_per_pixel: meta.samples_per_pixel,
        reduce: 0,
        data,
    })
}

fn sign_extend(v: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((v << shift) as i32) >> shift
}

/// Native little-endian samples -> stored values (PS3.5 8.1.1, 8.2).
fn unpack(raw: &[u8], n: usize, meta: &ImageMeta) -> Result<Vec<i32>, String> {
    let bytes_per = match meta.bits_allocated {
        8 => 1,
        16 => 2,
        32 => 4,
        b => {
            return Err(format!(
                "Bits Allocated {b} is not supported for grayscale decoding"
            ));
        }
    };
    if raw.len() < n * bytes_per {
        return Err(format!(
            "pixel data holds {} bytes, {} samples of {} bits need {}",
            raw.len(),
            n,
            meta.bits_allocated,
            n * bytes_per
        ));
    }
    let bits = meta.bits_stored as u32;
    let low_bit = (meta.high_bit as u32 + 1).saturating_sub(bits);
    let mask: u32 = if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    };
    let signed = meta.signed;
    let convert = |word: u32| -> i32 {
        let v = (word >> low_bit) & mask;
        if signed {
            sign_extend(v, bits)
        } else {
            v as i32
        }
    };
    let out = match bytes_per {
        1 => raw[..n].iter().map(|&b| convert(b as u32)).collect(),
        2 => raw[..2 * n]
            .chunks_exact(2)
            .map(|c| convert(u16::from_le_bytes([c[0], c[1]]) as u32))
            .collect(),
        _ => raw[..4 * n]
            .chunks_exact(4)
            .map(|c| convert(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::sign_extend;

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0x0FFF, 12), -1);
        assert_eq!(sign_extend(0x0800, 12), -2048);
        assert_eq!(sign_extend(0x07FF, 12), 2047);
        assert_eq!(sign_extend(0xFFFF, 16), -1);
    }
}
