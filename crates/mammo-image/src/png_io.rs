//! Grayscale PNG output (8 or 16 bit), written atomically, and the little reading the
//! pipeline needs to validate finished outputs.

use std::fs::File;
use std::path::{Path, PathBuf};

use mammo_io::{Cause, write_atomic};

/// Errors of PNG input/output; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {}: {cause}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        cause: Cause,
    },
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        cause: Cause,
    },
}

/// Writes `values` (`[0, 1]`, row-major) as a `bits`-deep (8 or 16) grayscale PNG. The file
/// appears complete or not at all: it is written to a temporary name beside the target and
/// renamed.
pub fn write_png_gray(
    path: &Path,
    width: u32,
    height: u32,
    values: &[u16],
    bits: u32,
) -> Result<(), PngError> {
    let depth = match bits {
        8 => png::BitDepth::Eight,
        16 => png::BitDepth::Sixteen,
        b => {
            return Err(PngError::Encode {
                path: path.into(),
                cause: format!("bit depth {b} (8 or 16)").into(),
            });
        }
    };
    assert_eq!(values.len(), width as usize * height as usize);
    let enc_err = |e: png::EncodingError| PngError::Encode {
        path: path.into(),
        cause: e.into(),
    };
    let mut encoded = Vec::with_capacity(values.len() * bits as usize / 16 + 1024);
    {
        let mut enc = png::Encoder::new(&mut encoded, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(depth);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().map_err(enc_err)?;
        let bytes: Vec<u8> = if bits == 8 {
            values.iter().map(|&v| v.min(255) as u8).collect()
        } else {
            values.iter().flat_map(|v| v.to_be_bytes()).collect()
        };
        writer.write_image_data(&bytes).map_err(enc_err)?;
        writer.finish().map_err(enc_err)?;
    }
    write_atomic(path, &encoded).map_err(|source| PngError::Write {
        path: path.into(),
        source,
    })
}

/// A decoded grayscale PNG. Fields are named, so that no caller has to remember an order of
/// width and height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayPng {
    pub height: u32,
    pub width: u32,
    /// 8 or 16.
    pub bit_depth: u32,
    /// Row-major, `height * width` values in `0..2^bit_depth`.
    pub samples: Vec<u16>,
}

/// The size and bit depth of a PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngSize {
    pub height: u32,
    pub width: u32,
    pub bit_depth: u32,
}

/// A complete PNG file's size; an error when it is truncated or corrupt (the whole image is
/// decoded, so a half-written file never passes).
pub fn png_dimensions(path: &Path) -> Result<PngSize, PngError> {
    let png = read_png_gray(path)?;
    Ok(PngSize {
        height: png.height,
        width: png.width,
        bit_depth: png.bit_depth,
    })
}

/// Reads a grayscale PNG.
pub fn read_png_gray(path: &Path) -> Result<GrayPng, PngError> {
    let file = File::open(path).map_err(|e| PngError::Read {
        path: path.into(),
        cause: e.into(),
    })?;
    read_png_gray_from(std::io::BufReader::new(file), path)
}

/// The largest PNG (width x height) [`read_png_gray`] reads: 16384 x 16384, the largest
/// output size `mammo preprocess` makes.
pub const MAX_PNG_PIXELS: u64 = 1 << 28;

/// [`read_png_gray`] from any seekable reader; `path` only names the source in errors.
pub fn read_png_gray_from(
    source: impl std::io::BufRead + std::io::Seek,
    path: &Path,
) -> Result<GrayPng, PngError> {
    let err = |cause: Cause| PngError::Read {
        path: path.into(),
        cause,
    };
    let decoder = png::Decoder::new(source);
    let mut reader = decoder.read_info().map_err(|e| err(e.into()))?;
    // The header's size is checked before the buffer for it is allocated: a few bytes can
    // claim 65535 x 65535 pixels.
    let (w, h) = (reader.info().width, reader.info().height);
    if w as u64 * h as u64 > MAX_PNG_PIXELS {
        return Err(err(format!(
            "the header claims {w}x{h} pixels, more than the {MAX_PNG_PIXELS} mammo reads"
        )
        .into()));
    }
    let mut buf = vec![
        0u8;
        reader
            .output_buffer_size()
            .ok_or_else(|| err("image too large".into()))?
    ];
    let info = reader.next_frame(&mut buf).map_err(|e| err(e.into()))?;
    if info.color_type != png::ColorType::Grayscale {
        return Err(err(format!(
            "colour type {:?}, not grayscale",
            info.color_type
        )
        .into()));
    }
    let bits = match info.bit_depth {
        png::BitDepth::Eight => 8,
        png::BitDepth::Sixteen => 16,
        d => return Err(err(format!("bit depth {d:?}").into())),
    };
    let data = &buf[..info.buffer_size()];
    let values = if bits == 8 {
        data.iter().map(|&b| b as u16).collect()
    } else {
        data.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    };
    Ok(GrayPng {
        height: info.height,
        width: info.width,
        bit_depth: bits,
        samples: values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_8_and_16_bit_and_truncation_is_detected() {
        let dir = std::env::temp_dir().join(format!("mammo-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for bits in [8u32, 16] {
            let max = (1u32 << bits) - 1;
            let values: Vec<u16> = (0..12 * 7)
                .map(|i| ((i * 977) as u32 % (max + 1)) as u16)
                .collect();
            let p = dir.join(format!("x{bits}.png"));
            write_png_gray(&p, 12, 7, &values, bits).unwrap();
            let png = read_png_gray(&p).unwrap();
            assert_eq!((png.width, png.height, png.bit_depth), (12, 7, bits));
            assert_eq!(png.samples, values);
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() - 20]).unwrap();
            assert!(png_dimensions(&p).is_err(), "truncated PNG accepted");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
