//! Sample grids: the paper's Figure 1 is a grid of generated images over training.

use std::path::Path;

use crate::error::{GanError, Result};

/// Writes `n` square grey images of side `res` (`[-1, 1]`, row-major, one after another) as a
/// `cols`-wide 8-bit PNG grid with a 1-pixel white gutter. Atomic.
pub fn write_grid(path: &Path, values: &[f32], n: usize, res: usize, cols: usize) -> Result<()> {
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let (w, h) = (cols * (res + 1) + 1, rows * (res + 1) + 1);
    let mut px = vec![255u16; w * h];
    for i in 0..n {
        let (gx, gy) = ((i % cols) * (res + 1) + 1, (i / cols) * (res + 1) + 1);
        for y in 0..res {
            for x in 0..res {
                let v = values[i * res * res + y * res + x];
                px[(gy + y) * w + gx + x] =
                    (((v + 1.0) * 0.5).clamp(0.0, 1.0) * 255.0).round() as u16;
            }
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| GanError::io("create", parent, e))?;
    }
    mammo_image::write_png_gray(path, w as u32, h as u32, &px, 8)
        .map_err(|e| GanError::io("write", path, e))
}

/// Stacks the first row of each grid PNG in `grids` (in order) into one image: samples of
/// the same latents over training, top to bottom.
pub fn write_progress(path: &Path, grids: &[std::path::PathBuf], res: usize) -> Result<()> {
    let mut rows: Vec<(usize, Vec<u16>)> = Vec::new();
    for g in grids {
        let png = mammo_image::read_png_gray(g).map_err(|e| GanError::io("read", g, e))?;
        let (w, h, px) = (png.width as usize, png.height as usize, png.samples);
        let band = (res + 2).min(h);
        rows.push((w, px[..band * w].to_vec()));
    }
    let Some(width) = rows.iter().map(|r| r.0).min() else {
        return Ok(());
    };
    let mut out = Vec::new();
    for (w, px) in &rows {
        for line in px.chunks(*w) {
            out.extend_from_slice(&line[..width]);
        }
    }
    let h = out.len() / width;
    mammo_image::write_png_gray(path, width as u32, h as u32, &out, 8)
        .map_err(|e| GanError::io("write", path, e))
}
