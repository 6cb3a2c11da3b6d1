//! Image synthesis: attenuation from anatomy, texture and lesions, then quantum noise, the
//! burned-in laterality marker, and the machine's mapping to stored values.
//!
//! The intermediate quantity is the log-attenuation `A = -ln(I / I0)` in units where the full
//! compressed thickness of fat gives `A = 1`. A detector pixel receiving `N = N0 e^-A`
//! photons has Poisson noise, i.e. a standard deviation of `1 / sqrt(N)` in `A`; the normal
//! approximation is used (N is always large). "For presentation" values are then linear in
//! `A` (dense tissue bright for MONOCHROME2; inverted for MONOCHROME1).

use crate::anatomy::BreastGeometry;
use crate::lesions::{BBox, LesionType};
use crate::machines::{Machine, Photometric};
use crate::rng::Rng;
use crate::study::ImagePlan;
use crate::texture::{Field, grid_for};

/// Attenuation of air behind the breast (small so the background is near, not at, zero).
const A_AIR: f64 = 0.015;
/// Attenuation drawn for the marker's letters (saturates near the top of the range).
const A_MARKER: f64 = 3.0;
/// Extra attenuation of fully glandular tissue over fat.
pub(crate) const GLAND_EXTRA: f64 = 0.75;
/// Attenuation of the pectoral muscle at its thickest.
const MUSCLE_EXTRA: f64 = 0.55;
/// Attenuation of a silicone implant at its centre.
const IMPLANT_EXTRA: f64 = 1.5;
/// Photons per pixel in air at the machine's full resolution.
const N0_FULL: f64 = 19_000.0;
/// Electronic (signal-independent) noise, in attenuation units.
const ELECTRONIC_SIGMA: f64 = 0.002;

/// A rendered image with its ground truth.
#[derive(Debug, Clone)]
pub struct RenderedImage {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Stored pixel values, row-major, within Bits Stored (inverted for MONOCHROME1).
    pub pixels: Vec<u16>,
    /// True where the pixel is breast (tissue or pectoral muscle), row-major.
    pub breast_mask: Vec<bool>,
    /// Lesions of this image: type, box in stored-image pixels, contrast.
    pub lesions: Vec<(LesionType, BBox, f64)>,
    /// Window (center, width) pairs in stored values, the first the default.
    pub windows: Vec<(f64, f64)>,
}

/// Maps attenuation to a stored value of `machine`, before any MONOCHROME1 inversion.
fn to_stored(machine: &Machine, a: f64) -> f64 {
    let max = machine.max_value() as f64;
    0.004 * max + machine.gain * max * a
}

/// The windows written for an image: a default one showing tissue (attenuation 0.45-2.0),
/// then a narrower "dense" and a wider "soft" one. `jitter` (about 1) varies them per image.
pub fn windows(machine: &Machine, jitter: f64) -> Vec<(f64, f64)> {
    let max = machine.max_value() as f64;
    let span = machine.gain * max;
    let raw = [(1.225, 1.55), (1.45, 1.0), (1.2, 2.2)];
    raw.iter()
        .take(machine.windows)
        .map(|&(c, w)| {
            let center = (to_stored(machine, c * jitter)).round();
            let center = match machine.photometric {
                Photometric::Monochrome2 => center,
                Photometric::Monochrome1 => max - center,
            };
            (center, (w * span * jitter).round())
        })
        .collect()
}

/// Renders one planned image.
pub fn render(plan: &ImagePlan) -> RenderedImage {
    let (w, h) = (plan.width as usize, plan.height as usize);
    let geo: &BreastGeometry = &plan.geometry;
    let machine = plan.machine;
    let mut rng = Rng::from_keys(plan.seed, &[0x5245_4E44, plan.keys.0, plan.keys.1]);

    // Texture on a coarse grid spanning the breast; s runs along the first (stretched) axis.
    let g = grid_for(plan.width, plan.height);
    let field = Field::power_law(&mut rng, g, plan.texture_beta, 1.8);
    let extent = 1.15 * geo.a.max(2.0 * geo.b);
    let cell = extent / g as f64;
    let s0 = geo.s_chest_wall();
    let bias = plan.density.gland_bias();

    let mut atten = vec![0.0f32; w * h];
    // Attenuation per unit thickness of the tissue at each pixel (fat = 1; 0 off the
    // parenchyma): a mass displaces this tissue, so it shows against fat and hides in
    // dense tissue.
    let mut mu = vec![0.0f32; w * h];
    let mut mask = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let p = geo.at(x as f64 + 0.5, y as f64 + 0.5);
            let i = y * w + x;
            if !p.inside() {
                atten[i] = A_AIR as f32;
                continue;
            }
            mask[i] = true;
            let mut a = 0.0;
            if p.rho < 1.0 {
                let depth = geo.depth_fraction(p.s).clamp(0.0, 1.0);
                // Lines converge toward the nipple: widen the across coordinate near it.
                let t_conv = p.t / (1.0 - 0.55 * depth);
                let (u, v) = ((p.s - s0) / cell, t_conv / cell + g as f64 / 2.0);
                let f = field.sample(u, v) as f64
                    + 0.5 * field.sample(4.1 * u + 17.3, 4.1 * v + 41.9) as f64;
                let env = geo.gland_envelope(&p);
                let gland = env / (1.0 + (-3.2 * (f + bias)).exp());
                // Zero crossings of a second smooth field: thin curvilinear strands
                // (ligaments, ducts, vessels) running toward the nipple.
                let r = field.sample(2.3 * u + 71.7, 2.3 * v + 5.3) as f64;
                let strands = (-(r / 0.12).powi(2)).exp() * (0.3 + env);
                // Unthresholded texture keeps fatty areas mottled (anatomical noise).
                let tissue = 1.0 + GLAND_EXTRA * gland + 0.05 * strands + 0.03 * f;
                mu[i] = tissue as f32;
                a += p.thickness * tissue;
                // Skin seen tangentially at the edge: a thin brighter rim.
                a += 0.22 * (-(p.edge_px / geo.skin_px).powi(2)).exp();
            }
            if p.muscle > 0.0 {
                let striation = 1.0 + 0.02 * ((p.s + 0.6 * p.t) / (geo.skin_px * 2.0)).sin();
                a += MUSCLE_EXTRA * p.muscle * striation;
            }
            if p.implant > 0.0 {
                a += IMPLANT_EXTRA * p.implant.powf(0.3);
            }
            atten[i] = a as f32;
        }
    }
    for lesion in plan.lesions.iter().chain(&plan.benign) {
        lesion.render(&mut atten, &mu, w, h);
    }

    // Quantum + electronic noise. Smaller matrices bin more detector area per pixel.
    let binning = (machine.width as f64 * machine.height as f64) / (w as f64 * h as f64);
    let n0 = N0_FULL * binning.max(1.0);
    let max = machine.max_value() as f64;
    let mut pixels = vec![0u16; w * h];
    for (px, &a) in pixels.iter_mut().zip(&atten) {
        let a = a as f64;
        let sigma = (a / 2.0).exp() / n0.sqrt() + ELECTRONIC_SIGMA;
        let noisy = a + sigma * rng.normal();
        let v = to_stored(machine, noisy).round().clamp(0.0, max);
        *px = match machine.photometric {
            Photometric::Monochrome2 => v as u16,
            Photometric::Monochrome1 => (max - v) as u16,
        };
    }
    let marker_value = {
        let v = to_stored(machine, A_MARKER).round().clamp(0.0, max);
        match machine.photometric {
            Photometric::Monochrome2 => v as u16,
            Photometric::Monochrome1 => (max - v) as u16,
        }
    };
    let text = format!("{} {}", plan.laterality.as_str(), plan.view.as_str());
    burn_marker(&mut pixels, &mask, w, h, geo.flip, &text, marker_value);

    let lesions = plan
        .lesions
        .iter()
        .map(|l| (l.kind, l.bbox(), l.contrast))
        .collect();
    RenderedImage {
        width: plan.width,
        height: plan.height,
        pixels,
        breast_mask: mask,
        lesions,
        windows: windows(machine, plan.window_jitter),
    }
}

/// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        _ => [0; 7],
    }
}

/// Burns `text` as blocky letters into a corner away from the chest wall (top first, then
/// bottom) where it does not touch the breast; skipped when neither corner is free.
fn burn_marker(
    pixels: &mut [u16],
    mask: &[bool],
    w: usize,
    h: usize,
    chest_wall_right: bool,
    text: &str,
    value: u16,
) {
    let cell = ((h as f64 * 0.0025).round() as usize).max(1);
    let (tw, th) = (text.chars().count() * 6 * cell, 7 * cell);
    let margin = 3 * cell;
    if tw + 2 * margin > w / 2 || th + 2 * margin > h / 4 {
        return;
    }
    let x0 = if chest_wall_right {
        margin
    } else {
        w - margin - tw
    };
    for y0 in [margin, h - margin - th] {
        let free = (y0 - cell..y0 + th + cell)
            .all(|y| (x0 - cell..x0 + tw + cell).all(|x| !mask[y * w + x]));
        if !free {
            continue;
        }
        for (k, c) in text.chars().enumerate() {
            let rows = glyph(c);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) == 0 {
                        continue;
                    }
                    let (gx, gy) = (x0 + (k * 6 + col) * cell, y0 + r * cell);
                    for yy in gy..gy + cell {
                        pixels[yy * w + gx..yy * w + gx + cell].fill(value);
                    }
                }
            }
        }
        return;
    }
}
