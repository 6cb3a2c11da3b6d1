//! Pictures of an explanation: the heat map in a colour map, blended over the image, boxes
//! drawn; the float map as `.npy` for numeric use.

use std::path::Path;

use crate::ExplainError;
use crate::boxes::BBox;

/// RGB image, 8 bits per channel.
#[derive(Debug, Clone)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// The "jet" colour map (as OpenCV's `COLORMAP_JET`: blue, cyan, yellow, red) at `v` in [0, 1].
pub fn jet(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    let ch = |centre: f32| ((1.5 - (4.0 * v - centre).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [ch(3.0), ch(2.0), ch(1.0)]
}

/// Grey image (`[0, 1]`) with the heat map blended in: `(1 - alpha) * grey + alpha * jet(heat)`.
pub fn overlay(grey: &[f32], heat: &[f32], width: usize, height: usize, alpha: f32) -> Rgb {
    let mut data = Vec::with_capacity(width * height * 3);
    for (&g, &h) in grey.iter().zip(heat) {
        let c = jet(h);
        let g = g.clamp(0.0, 1.0) * 255.0;
        for k in c {
            data.push(((1.0 - alpha) * g + alpha * k as f32).round() as u8);
        }
    }
    Rgb {
        width,
        height,
        data,
    }
}

/// The heat map alone in the colour map.
pub fn colour(heat: &[f32], width: usize, height: usize) -> Rgb {
    Rgb {
        width,
        height,
        data: heat.iter().flat_map(|&h| jet(h)).collect(),
    }
}

/// Draws the outline of `b` (`thickness` pixels, inside the box) in `colour`.
pub fn draw_box(img: &mut Rgb, b: &BBox, colour: [u8; 3], thickness: usize) {
    let clamp = |v: f64, max: usize| (v.round().max(0.0) as usize).min(max);
    let (x0, y0) = (clamp(b.x0, img.width), clamp(b.y0, img.height));
    let (x1, y1) = (clamp(b.x1, img.width), clamp(b.y1, img.height));
    for y in y0..y1 {
        for x in x0..x1 {
            let edge = x < x0 + thickness
                || x + thickness >= x1
                || y < y0 + thickness
                || y + thickness >= y1;
            if edge {
                let i = (y * img.width + x) * 3;
                img.data[i..i + 3].copy_from_slice(&colour);
            }
        }
    }
}

/// RGB PNG, written atomically.
pub fn write_rgb_png(path: &Path, img: &Rgb) -> Result<(), ExplainError> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, img.width as u32, img.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| ExplainError::Write {
            path: path.into(),
            cause: e.into(),
        })?;
        w.write_image_data(&img.data)
            .map_err(|e| ExplainError::Write {
                path: path.into(),
                cause: e.into(),
            })?;
    }
    mammo_image::write_atomic(path, &bytes).map_err(|e| ExplainError::Write {
        path: path.into(),
        cause: e.into(),
    })
}

/// `[height, width]` little-endian f32 array in NumPy's `.npy` format (version 1.0).
pub fn npy_bytes(values: &[f32], height: usize, width: usize) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({height}, {width}), }}");
    // magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_ends() {
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
        assert_eq!(jet(0.5), [128, 255, 128]);
    }

    #[test]
    fn npy_header_is_aligned() {
        let b = npy_bytes(&[1.0, 2.0], 1, 2);
        assert_eq!(&b[..6], b"\x93NUMPY");
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        assert_eq!(b.len(), 10 + hl + 8);
        assert!(
            std::str::from_utf8(&b[10..10 + hl])
                .unwrap()
                .contains("'shape': (1, 2)")
        );
    }

    #[test]
    fn box_outline() {
        let mut img = Rgb {
            width: 5,
            height: 5,
            data: vec![0; 75],
        };
        draw_box(
            &mut img,
            &BBox {
                x0: 1.0,
                y0: 1.0,
                x1: 4.0,
                y1: 4.0,
            },
            [255, 0, 0],
            1,
        );
        let red = |x: usize, y: usize| img.data[(y * 5 + x) * 3] == 255;
        assert!(red(1, 1) && red(3, 3) && red(1, 3) && !red(2, 2) && !red(0, 0) && !red(4, 4));
    }
}
