//! Reading mammography DICOM files: header facts, stored pixel values, and rendering through
//! the modality and VOI transforms the way a DICOM viewer does (PS3.3 C.11, PS3.4 N.2).
//!
//! The pipeline is split into pure steps so that each can be tested against an oracle:
//!
//! 1. [`DicomImage::open`] reads the header facts ([`ImageMeta`]) and keeps the data set.
//! 2. [`DicomImage::decode`] yields the *stored values* of a frame ([`StoredFrame`]), bit-exact
//!    with what pydicom returns. JPEG 2000 (raw codestream or JP2-wrapped) goes through
//!    OpenJPEG and can be decoded at reduced resolution; JPEG lossless, JPEG-LS, RLE and the
//!    native syntaxes go through dicom-pixeldata.
//! 3. [`Renderer`] applies the modality LUT, the chosen VOI transform and the MONOCHROME1
//!    inversion, producing presentation values in `[0, 1]` (tissue bright).

mod decode;
mod error;
mod lut;
mod meta;
mod render;

pub use decode::StoredFrame;
pub use error::DicomError;
pub use lut::{LookupTable, ModalityLut, VoiFunction, VoiTransform, Window};
pub use meta::{ImageMeta, Photometric, TransferSyntaxKind};
pub use render::{Rendered, Renderer, VoiChoice, quantize};

use std::path::{Path, PathBuf};

use dicom_object::{DefaultDicomObject, OpenFileOptions};

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

impl DicomImage {
    /// Opens a DICOM Part 10 file and reads its image header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let object = OpenFileOptions::new()
            .open_file(&path)
            .map_err(|e| DicomError::Read {
                path: path.clone(),
                reason: error::chain(&e),
            })?;
        let meta = ImageMeta::from_object(&object).map_err(|reason| DicomError::Header {
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
        decode::decode_frame(&self.object, &self.meta, frame, reduce, threads).map_err(|reason| {
            DicomError::Decode {
                path: self.path.clone(),
                transfer_syntax: self.meta.transfer_syntax.clone(),
                reason,
            }
        })
    }
}
