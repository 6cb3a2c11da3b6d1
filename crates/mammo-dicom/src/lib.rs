//! Reading mammography DICOM files: header facts, stored pixel values, and rendering through
//! the modality and VOI transforms the way a DICOM viewer does (PS3.3 C.11, PS3.4 N.2).
//!
//! The pipeline is split into pure steps so that each can be tested against an oracle:
//!
//! 1. [`DicomImage::open`] reads the header facts ([`ImageMeta`]) and keeps the data set.
//! 2. [`DicomImage::decode`] yields the *stored values* of a frame ([`StoredFrame`]), bit-exact
//!    with what pydicom returns. JPEG 2000 (raw codestream or JP2-wrapped) goes through
//!    OpenJPEG and can be decoded at reduced resolution; RLE through this crate's
//!    own checked decoder; JPEG lossless, JPEG-LS and the native syntaxes through
//!    dicom-pixeldata.
//! 3. [`Renderer`] applies the modality LUT, the chosen VOI transform and the MONOCHROME1
//!    inversion, producing presentation values in `[0, 1]` (tissue bright).

mod decode;
mod error;
mod lut;
mod meta;
mod prescan;
mod render;
mod rle;

pub use decode::StoredFrame;
pub use error::{Cause, DicomError, chain as error_chain};
pub use lut::{LookupTable, ModalityLut, VoiFunction, VoiTransform, Window};
pub use meta::{ImageMeta, Photometric, TransferSyntaxKind};
pub use render::{RenderError, Rendered, Renderer, VoiChoice, quantize};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_object::{DefaultDicomObject, OpenFileOptions};

/// The default of [`max_frame_pixels`]: 2^28 (268 million) pixels x samples per frame, ten
/// times the largest full-field mammography detector (about 5900 x 4700) and small enough
/// that a file claiming more is refused before anything that size is allocated.
pub const DEFAULT_MAX_FRAME_PIXELS: u64 = 1 << 28;

static MAX_FRAME_PIXELS: AtomicU64 = AtomicU64::new(DEFAULT_MAX_FRAME_PIXELS);

/// Sets the largest frame (Rows x Columns x Samples per Pixel) that [`DicomImage::open`]
/// accepts, for the whole process (the command line's `--max-pixels`). 0 means the default.
pub fn set_max_frame_pixels(limit: u64) {
    let limit = if limit == 0 {
        DEFAULT_MAX_FRAME_PIXELS
    } else {
        limit
    };
    MAX_FRAME_PIXELS.store(limit, Ordering::Relaxed);
}

/// The largest frame [`DicomImage::open`] accepts (see [`set_max_frame_pixels`]).
pub fn max_frame_pixels() -> u64 {
    MAX_FRAME_PIXELS.load(Ordering::Relaxed)
}

/// The most a deflated data set may inflate to: a frame at the pixel limit with 32-bit
/// samples, plus 64 MiB for everything else in the data set.
fn max_inflated_bytes(max_frame_pixels: u64) -> u64 {
    max_frame_pixels.saturating_mul(4).saturating_add(64 << 20)
}

/// Whether this crate decodes the pixel data of transfer syntax `uid`: the native syntaxes,
/// JPEG 2000 / HTJ2K (OpenJPEG), RLE Lossless (this crate's decoder), and whatever else
/// dicom-pixeldata has a decoder for in this build (JPEG baseline/extended/lossless, JPEG-LS).
/// MPEG/HEVC video, JPIP and unknown UIDs are not.
pub fn can_decode_transfer_syntax(uid: &str) -> bool {
    use dicom_encoding::TransferSyntaxIndex;
    let uid = uid.trim_end_matches(['\0', ' ']);
    match TransferSyntaxKind::of(uid) {
        TransferSyntaxKind::Native | TransferSyntaxKind::Jpeg2000 => true,
        TransferSyntaxKind::Encapsulated => {
            uid == decode::RLE_LOSSLESS
                || dicom_transfer_syntax_registry::TransferSyntaxRegistry
                    .get(uid)
                    .is_some_and(|ts| ts.can_decode_all())
        }
    }
}

/// The Transfer Syntax UID of a DICOM Part 10 stream held in memory (preamble optional),
/// read from its file meta group alone; `None` when there is no readable meta group. Lets a
/// caller tell "not DICOM" from "DICOM in a syntax that cannot be decoded" when
/// [`DicomImage::from_bytes`] fails.
pub fn transfer_syntax_of(bytes: &[u8]) -> Option<String> {
    let start = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        128
    } else if bytes.starts_with(b"DICM") {
        0
    } else {
        return None;
    };
    let meta = dicom_object::meta::FileMetaTable::from_reader(&bytes[start..]).ok()?;
    let uid = meta.transfer_syntax().to_owned();
    (!uid.is_empty()).then_some(uid)
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DicomError>;

/// An opened DICOM image: its header facts and its data set (pixel data not yet decoded).
pub struct DicomImage {
    path: PathBuf,
    meta: ImageMeta,
    object: DefaultDicomObject,
}

impl std::fmt::Debug for DicomImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DicomImage")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish()
    }
}

/// A word for a file type that is not a regular file.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a folder"
    } else {
        "not a plain file"
    }
}

impl DicomImage {
    /// Opens a DICOM Part 10 file and reads its image header, refusing frames larger than
    /// [`max_frame_pixels`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_limit(path, max_frame_pixels())
    }

    /// [`Self::open`] with an explicit limit on Rows x Columns x Samples per Pixel.
    ///
    /// Everything the header promises is checked before any pixel buffer is allocated: the
    /// file must be a regular file (a FIFO or device would block or never end), the frame
    /// must fit the limit, and native Pixel Data must hold as many bytes as the header says.
    pub fn open_with_limit(path: impl AsRef<Path>, max_frame_pixels: u64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let read_err = |cause: Cause| DicomError::Read {
            path: path.clone(),
            cause,
        };
        let stat = std::fs::metadata(&path).map_err(|e| read_err(e.into()))?;
        if !stat.is_file() {
            return Err(read_err(
                format!("not a regular file ({})", file_kind(&stat.file_type())).into(),
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| read_err(e.into()))?;
        Self::from_bytes(path, &bytes, max_frame_pixels)
    }

    /// Reads a DICOM Part 10 stream held in memory (preamble optional) with the same checks
    /// as [`Self::open_with_limit`]; `path` only names it in errors.
    pub fn from_bytes(path: impl AsRef<Path>, bytes: &[u8], max_frame_pixels: u64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        // Value lengths beyond the end of the stream are refused before the parser would
        // allocate them.
        prescan::check_lengths(bytes, max_inflated_bytes(max_frame_pixels)).map_err(|reason| {
            DicomError::Read {
                path: path.clone(),
                cause: reason.into(),
            }
        })?;
        let object = OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Auto)
            .from_reader(bytes)
            .map_err(|e| DicomError::Read {
                path: path.clone(),
                cause: e.into(),
            })?;
        Self::from_object(path, object, max_frame_pixels)
    }

    fn from_object(
        path: PathBuf,
        object: DefaultDicomObject,
        max_frame_pixels: u64,
    ) -> Result<Self> {
        let meta = ImageMeta::from_object(&object).map_err(|reason| DicomError::Header {
            path: path.clone(),
            reason,
        })?;
        let frame_pixels =
            meta.rows as u64 * meta.columns as u64 * meta.samples_per_pixel.max(1) as u64;
        if frame_pixels > max_frame_pixels {
            return Err(DicomError::TooLarge {
                path,
                reason: format!(
                    "Rows {} x Columns {} x Samples per Pixel {} = {frame_pixels} values per \
                     frame, more than the limit of {max_frame_pixels} (raise it with \
                     --max-pixels if the image is real)",
                    meta.rows, meta.columns, meta.samples_per_pixel
                ),
            });
        }
        decode::check_pixel_data(&object, &meta).map_err(|reason| DicomError::Header {
            path: path.clone(),
            reason,
        })?;
        Ok(Self { path, meta, object })
    }

    /// The file this image was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Header facts.
    pub fn meta(&self) -> &ImageMeta {
        &self.meta
    }

    /// The underlying data set, for callers that need other attributes.
    pub fn object(&self) -> &DefaultDicomObject {
        &self.object
    }

    /// Decodes the stored values of one frame. `reduce` asks JPEG 2000 sources for a
    /// `2^reduce`-times smaller image; other sources ignore it (see [`StoredFrame::reduce`]).
    pub fn decode(&self, frame: u32, reduce: u32) -> Result<StoredFrame> {
        self.decode_with_threads(frame, reduce, 1)
    }

    /// [`Self::decode`] with `threads` OpenJPEG workers for this one image (JPEG 2000 only;
    /// use 1 when images are already decoded in parallel).
    pub fn decode_with_threads(
        &self,
        frame: u32,
        reduce: u32,
        threads: u32,
    ) -> Result<StoredFrame> {
        decode::decode_frame(&self.object, &self.meta, frame, reduce, threads).map_err(|cause| {
            DicomError::Decode {
                path: self.path.clone(),
                transfer_syntax: self.meta.transfer_syntax.clone(),
                cause,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodable_transfer_syntaxes() {
        for uid in [
            "1.2.840.10008.1.2",      // implicit VR little endian
            "1.2.840.10008.1.2.1",    // explicit VR little endian
            "1.2.840.10008.1.2.4.90", // JPEG 2000 lossless
            "1.2.840.10008.1.2.4.80", // JPEG-LS lossless
            "1.2.840.10008.1.2.4.70", // JPEG lossless SV1
            "1.2.840.10008.1.2.5",    // RLE lossless
        ] {
            assert!(can_decode_transfer_syntax(uid), "{uid}");
        }
        for uid in [
            "1.2.840.10008.1.2.4.100", // MPEG2 main profile
            "1.2.840.10008.1.2.4.94",  // JPIP referenced
            "1.2.3.4",
        ] {
            assert!(!can_decode_transfer_syntax(uid), "{uid}");
        }
    }

    #[test]
    fn transfer_syntax_from_the_meta_group_alone() {
        assert_eq!(transfer_syntax_of(b"not a DICOM file at all"), None);
        let meta = dicom_object::meta::FileMetaTableBuilder::new()
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
            .media_storage_sop_instance_uid("2.25.1")
            .transfer_syntax("1.2.840.10008.1.2.4.100")
            .implementation_class_uid("2.25.2")
            .build()
            .unwrap();
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        meta.write(&mut bytes).unwrap();
        assert_eq!(
            transfer_syntax_of(&bytes).as_deref(),
            Some("1.2.840.10008.1.2.4.100")
        );
        assert_eq!(
            transfer_syntax_of(&bytes[128..]).as_deref(),
            Some("1.2.840.10008.1.2.4.100")
        );
    }
}
