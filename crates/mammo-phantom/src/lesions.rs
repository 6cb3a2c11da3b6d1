//! Lesion models, drawn as added attenuation (so they are brighter than their surroundings
//! in a MONOCHROME2 presentation):
//!
//! A mass is tissue a little denser than fibroglandular tissue ([`MASS_MU`]) that displaces
//! what was there: it adds its full contrast over fat and only a fraction of it over dense
//! tissue, so it is never much brighter than the breast's own dense parts (as in real
//! mammograms, where dense tissue masks masses) and no global statistic of the image gives it
//! away. Calcifications are calcium, far denser than any tissue: they simply add.
//!
//! * `mass_round`: circumscribed, a projected sphere with a sharp margin;
//! * `mass_irregular`: radius modulated by harmonics 2-7, blurred (indistinct) margin;
//! * `mass_spiculated`: an irregular core with thin tapering lines radiating outward;
//! * `calcification_cluster`: tiny bright specks in a cluster a few mm wide.
//!
//! A lesion's bounding box is computed analytically from its parameters, so it is known
//! before rendering and encloses every pixel the lesion changes.

use std::f64::consts::TAU;

use crate::render::GLAND_EXTRA;
use crate::rng::Rng;

/// Attenuation per unit thickness of a mass (fat = 1, fibroglandular tissue 1 +
/// [`GLAND_EXTRA`]): invasive carcinoma attenuates a little more than fibroglandular tissue.
pub const MASS_MU: f64 = 1.0 + GLAND_EXTRA * 1.1;

/// The share of a mass's contrast (its added attenuation over fat) that shows over tissue
/// of attenuation `mu` per unit thickness: 1 over fat, about 0.1 over fully dense tissue.
fn mass_visibility(mu: f32) -> f64 {
    ((MASS_MU - mu as f64) / (MASS_MU - 1.0)).clamp(0.0, 1.0)
}

/// The lesion types written to lesions.csv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LesionType {
    /// Circumscribed round or oval mass.
    MassRound,
    /// Mass with irregular shape and indistinct margin.
    MassIrregular,
    /// Mass with spiculations.
    MassSpiculated,
    /// Cluster of microcalcifications.
    CalcificationCluster,
}

impl LesionType {
    /// Name used in lesions.csv.
    pub fn as_str(self) -> &'static str {
        match self {
            LesionType::MassRound => "mass_round",
            LesionType::MassIrregular => "mass_irregular",
            LesionType::MassSpiculated => "mass_spiculated",
            LesionType::CalcificationCluster => "calcification_cluster",
        }
    }
}

/// One spicule: a line from the centre outward.
#[derive(Debug, Clone, Copy)]
struct Spicule {
    angle: f64,
    start: f64,
    length: f64,
    width: f64,
    contrast: f64,
}

/// One calcification speck.
#[derive(Debug, Clone, Copy)]
struct Speck {
    x: f64,
    y: f64,
    radius: f64,
    contrast: f64,
}

/// A lesion as it appears in one image: pixel coordinates of the stored image.
#[derive(Debug, Clone)]
pub struct Lesion {
    /// Type.
    pub kind: LesionType,
    /// Centre, px.
    pub x: f64,
    /// Centre, px.
    pub y: f64,
    /// Nominal radius (mass) or cluster radius (calcifications), px.
    pub radius: f64,
    /// Peak added attenuation, in units where full-thickness fat is 1.0.
    pub contrast: f64,
    margin: f64,
    elongation: f64,
    orientation: f64,
    harmonics: Vec<(f64, f64)>,
    spicules: Vec<Spicule>,
    specks: Vec<Speck>,
}

/// Bounding box `[x0, x1) x [y0, y1)` in stored-image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BBox {
    /// First column.
    pub x0: i64,
    /// First row.
    pub y0: i64,
    /// One past the last column.
    pub x1: i64,
    /// One past the last row.
    pub y1: i64,
}

fn smooth01(x: f64) -> f64 {
    let t = x.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

impl Lesion {
    /// Draws the shape details of a lesion of `kind` centred at (`x`, `y`).
    pub fn sample(
        rng: &mut Rng,
        kind: LesionType,
        x: f64,
        y: f64,
        radius: f64,
        contrast: f64,
    ) -> Self {
        let mut lesion = Lesion {
            kind,
            x,
            y,
            radius,
            contrast,
            margin: 0.06,
            elongation: rng.range(0.75, 1.0),
            orientation: rng.range(0.0, TAU),
            harmonics: Vec::new(),
            spicules: Vec::new(),
            specks: Vec::new(),
        };
        match kind {
            LesionType::MassRound => {
                lesion
                    .harmonics
                    .push((rng.range(0.0, 0.04), rng.range(0.0, TAU)));
                lesion.margin = (0.8 / radius).max(0.04);
            }
            LesionType::MassIrregular | LesionType::MassSpiculated => {
                for k in 2..=7 {
                    let amp = rng.range(0.04, 0.12) / (k as f64 - 1.0).sqrt();
                    lesion.harmonics.push((amp, rng.range(0.0, TAU)));
                }
                lesion.margin = rng.range(0.15, 0.3);
                if kind == LesionType::MassSpiculated {
                    lesion.radius *= 0.75;
                    let n = rng.int_in(8, 18) as usize;
                    for i in 0..n {
                        let angle = (i as f64 + rng.range(-0.35, 0.35)) * TAU / n as f64;
                        lesion.spicules.push(Spicule {
                            angle,
                            start: 0.6 * lesion.radius,
                            length: radius * rng.range(1.3, 2.4),
                            width: (radius * rng.range(0.04, 0.08)).max(0.8),
                            contrast: contrast * rng.range(0.5, 0.8),
                        });
                    }
                }
            }
            LesionType::CalcificationCluster => {
                let n = rng.int_in(5, 20) as usize;
                let speck_px = radius / 25.0; // cluster ~5 mm wide, specks ~0.1-0.2 mm
                for _ in 0..n {
                    // Uniform in an elongated ellipse.
                    let r = radius * rng.uniform().sqrt();
                    let phi = rng.range(0.0, TAU);
                    let (dx, dy) = (r * phi.cos(), r * phi.sin() * lesion.elongation);
                    let (so, co) = lesion.orientation.sin_cos();
                    lesion.specks.push(Speck {
                        x: x + dx * co - dy * so,
                        y: y + dx * so + dy * co,
                        radius: speck_px * rng.range(0.6, 1.6),
                        contrast: contrast * rng.range(0.6, 1.0),
                    });
                }
            }
        }
        lesion
    }

    fn harmonic_sum(&self) -> f64 {
        self.harmonics.iter().map(|h| h.0).sum()
    }

    /// Inclusive-exclusive pixel box enclosing every pixel the lesion touches.
    pub fn bbox(&self) -> BBox {
        let (mut x0, mut y0, mut x1, mut y1);
        if self.kind == LesionType::CalcificationCluster {
            (x0, y0, x1, y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
            for s in &self.specks {
                let r = speck_reach(s.radius);
                x0 = x0.min(s.x - r);
                y0 = y0.min(s.y - r);
                x1 = x1.max(s.x + r);
                y1 = y1.max(s.y + r);
            }
        } else {
            let mut r = self.radius * (1.0 + self.harmonic_sum()) * (1.0 + self.margin);
            for sp in &self.spicules {
                r = r.max(sp.length + 2.0 * sp.width);
            }
            (x0, y0, x1, y1) = (self.x - r, self.y - r, self.x + r, self.y + r);
        }
        // Pixel i covers [i, i+1) with its centre at i + 0.5.
        BBox {
            x0: (x0 - 0.5).floor() as i64,
            y0: (y0 - 0.5).floor() as i64,
            x1: (x1 - 0.5).ceil() as i64 + 1,
            y1: (y1 - 0.5).ceil() as i64 + 1,
        }
    }

    /// Added attenuation at image point (`px`, `py`); zero outside [`Lesion::bbox`].
    pub fn value_at(&self, px: f64, py: f64) -> f64 {
        if self.kind == LesionType::CalcificationCluster {
            return self.specks.iter().map(|s| speck_value(s, px, py)).sum();
        }
        let (dx, dy) = (px - self.x, py - self.y);
        // Mass body in its own (rotated, elongated) frame.
        let (so, co) = self.orientation.sin_cos();
        let (u, w) = (dx * co + dy * so, (-dx * so + dy * co) / self.elongation);
        let theta = w.atan2(u);
        let mut rr = 1.0;
        for (k, &(amp, ph)) in self.harmonics.iter().enumerate() {
            rr += amp * ((k as f64 + 2.0) * theta + ph).cos();
        }
        let q = (u * u + w * w).sqrt() / (self.radius * rr);
        let dome = (1.0 - q * q).max(0.0).sqrt();
        let edge = smooth01((1.0 + self.margin - q) / (2.0 * self.margin));
        let mut v = self.contrast * edge * (0.45 + 0.55 * dome);
        for sp in &self.spicules {
            v += spicule_value(sp, dx, dy);
        }
        v
    }

    /// Adds the lesion's attenuation to `buf` (row-major `width` x `height`); `mu` is the
    /// attenuation per unit thickness of the tissue under each pixel, which a mass displaces.
    pub fn render(&self, buf: &mut [f32], mu: &[f32], width: usize, height: usize) {
        let b = self.bbox();
        let (xa, xb) = (b.x0.max(0) as usize, (b.x1.max(0) as usize).min(width));
        let (ya, yb) = (b.y0.max(0) as usize, (b.y1.max(0) as usize).min(height));
        let mass = self.kind != LesionType::CalcificationCluster;
        for y in ya..yb {
            for x in xa..xb {
                let i = y * width + x;
                let mut v = self.value_at(x as f64 + 0.5, y as f64 + 0.5);
                if mass {
                    v *= mass_visibility(mu[i]);
                }
                buf[i] += v as f32;
            }
        }
    }
}

/// How far a speck's blob reaches, px.
fn speck_reach(radius: f64) -> f64 {
    2.0 * radius.max(0.6) + 0.5
}

fn speck_value(s: &Speck, px: f64, py: f64) -> f64 {
    // Sub-pixel specks keep their integrated contrast but spread over ~one pixel.
    let r = s.radius.max(0.6);
    let scale = (s.radius / r).powi(2);
    let d2 = (px - s.x).powi(2) + (py - s.y).powi(2);
    if d2 > speck_reach(s.radius).powi(2) {
        return 0.0;
    }
    s.contrast * scale * (-d2 / (r * r)).exp()
}

fn spicule_value(sp: &Spicule, dx: f64, dy: f64) -> f64 {
    let (sa, ca) = sp.angle.sin_cos();
    let along = dx * ca + dy * sa;
    // Spicules start inside the body's margin, not at the centre, where they would pile up.
    if along <= sp.start || along >= sp.length {
        return 0.0;
    }
    let perp = -dx * sa + dy * ca;
    let taper = 1.0 - (along - sp.start) / (sp.length - sp.start);
    let w = sp.width * (0.3 + 0.7 * taper);
    if perp.abs() > 3.0 * w {
        return 0.0;
    }
    sp.contrast * taper * (-(perp / w).powi(2)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peak added attenuation of `kind` rendered over uniform tissue of attenuation `mu`.
    fn peak_over(kind: LesionType, mu: f32) -> f32 {
        let mut rng = Rng::from_keys(4, &[kind as u64]);
        let lesion = Lesion::sample(&mut rng, kind, 40.0, 40.0, 12.0, 0.5);
        let mut buf = vec![0f32; 80 * 80];
        lesion.render(&mut buf, &vec![mu; 80 * 80], 80, 80);
        buf.iter().copied().fold(0.0, f32::max)
    }

    #[test]
    fn masses_hide_in_dense_tissue_calcifications_do_not() {
        let dense = (1.0 + GLAND_EXTRA) as f32;
        for kind in [LesionType::MassRound, LesionType::MassSpiculated] {
            let (fat, gland) = (peak_over(kind, 1.0), peak_over(kind, dense));
            assert!(fat > 0.4, "{kind:?} over fat {fat}");
            // (MASS_MU - dense) / (MASS_MU - 1) of it: about a tenth.
            let share = gland / fat;
            assert!(
                (0.05..0.15).contains(&share),
                "{kind:?} over dense tissue: {share}"
            );
        }
        let calc = LesionType::CalcificationCluster;
        assert_eq!(peak_over(calc, 1.0), peak_over(calc, dense));
    }

    #[test]
    fn render_stays_inside_bbox() {
        for (i, kind) in [
            LesionType::MassRound,
            LesionType::MassIrregular,
            LesionType::MassSpiculated,
            LesionType::CalcificationCluster,
        ]
        .into_iter()
        .enumerate()
        {
            let mut rng = Rng::from_keys(9, &[i as u64]);
            let (w, h) = (120usize, 120usize);
            let lesion = Lesion::sample(&mut rng, kind, 60.3, 58.7, 14.0, 0.5);
            let b = lesion.bbox();
            let mut touched = 0;
            let mut peak = 0.0f64;
            // Evaluate everywhere, not only in the box, to see any leak.
            for y in 0..h {
                for x in 0..w {
                    let v = lesion.value_at(x as f64 + 0.5, y as f64 + 0.5);
                    peak = peak.max(v);
                    if v > 1e-9 {
                        touched += 1;
                        let inside = (x as i64) >= b.x0
                            && (x as i64) < b.x1
                            && (y as i64) >= b.y0
                            && (y as i64) < b.y1;
                        assert!(inside, "{kind:?} touches ({x},{y}) outside {b:?}");
                    }
                }
            }
            assert!(touched > 3, "{kind:?} drew {touched} pixels");
            assert!(peak > 0.1, "{kind:?} peak {peak}");
        }
    }
}
