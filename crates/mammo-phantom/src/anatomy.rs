//! Breast geometry of one projection: outline, compressed-thickness profile, skin, pectoral
//! muscle, implant, and the mapping of a 3-D position in the breast into the image.
//!
//! Everything is computed in a *canonical* frame in which the chest wall is the left image
//! edge (x = 0); right breasts are mirrored on output so that, as in RSNA, a left breast lies
//! against the left edge and a right breast against the right edge.
//!
//! The outline is an ellipse centred slightly behind the chest wall, rotated by `tilt`
//! (0 for CC; the MLO breast droops, so its nipple axis points down and its upper part runs
//! out of the top edge into the axilla), with a few low-order radial harmonics so that no two
//! breasts look alike.

use crate::rng::Rng;

/// Image laterality (0020,0062).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Laterality {
    /// Left breast: chest wall on the left image edge.
    L,
    /// Right breast: chest wall on the right image edge.
    R,
}

impl Laterality {
    /// "L" or "R".
    pub fn as_str(self) -> &'static str {
        match self {
            Laterality::L => "L",
            Laterality::R => "R",
        }
    }
}

/// View Position (0018,5101) codes that occur in RSNA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Cranio-caudal.
    CC,
    /// Medio-lateral oblique.
    MLO,
    /// Medio-lateral (90 degrees).
    ML,
    /// Latero-medial (90 degrees).
    LM,
    /// Axillary tail.
    AT,
}

impl View {
    /// The code string.
    pub fn as_str(self) -> &'static str {
        match self {
            View::CC => "CC",
            View::MLO => "MLO",
            View::ML => "ML",
            View::LM => "LM",
            View::AT => "AT",
        }
    }

    /// Angle of the projection around the nipple axis, radians: the image's vertical axis
    /// shows `cos(psi - obliquity)` of a point at clock angle `psi` (0 = lateral,
    /// pi/2 = superior).
    pub fn obliquity(self) -> f64 {
        match self {
            View::CC => 0.0,
            View::MLO | View::AT => std::f64::consts::FRAC_PI_4,
            View::ML | View::LM => std::f64::consts::FRAC_PI_2,
        }
    }

    /// Whether the pectoral muscle is projected (all lateral and oblique views).
    pub fn shows_muscle(self) -> bool {
        self != View::CC
    }
}

/// Pectoral muscle in canonical coordinates: a (slightly convex) triangle in the top
/// chest-wall corner with legs `top` along the top edge and `side` down the chest wall.
#[derive(Debug, Clone, Copy)]
pub struct Muscle {
    /// Length along the top edge, px.
    pub top: f64,
    /// Length down the chest wall, px.
    pub side: f64,
    /// Super-ellipse exponent of the muscle edge (1 = straight, larger bows outward).
    pub bulge: f64,
}

/// A breast implant: an ellipse centred on the nipple axis, in frame units.
#[derive(Debug, Clone, Copy)]
pub struct Implant {
    /// Centre along the nipple axis, px from the ellipse centre.
    pub s: f64,
    /// Semi-axis along the nipple axis, px.
    pub ra: f64,
    /// Semi-axis across, px.
    pub rb: f64,
}

/// Geometry of one projected breast (all lengths in pixels of the stored image).
#[derive(Debug, Clone)]
pub struct BreastGeometry {
    /// Image columns.
    pub width: u32,
    /// Image rows.
    pub height: u32,
    /// Mirror canonical x on output (right breasts).
    pub flip: bool,
    /// Outline centre x (canonical; negative = behind the chest wall).
    pub cx: f64,
    /// Outline centre y.
    pub cy: f64,
    /// Semi-axis along the nipple axis.
    pub a: f64,
    /// Semi-axis across the nipple axis.
    pub b: f64,
    /// Rotation of the nipple axis (positive = nipple lower), radians.
    pub tilt: f64,
    /// Radial harmonics (k = 2, 3, 4): amplitude (fraction of radius), phase.
    pub harmonics: [(f64, f64); 3],
    /// Normalised radius where the compressed thickness starts to roll off.
    pub rolloff_start: f64,
    /// Skin thickness, px.
    pub skin_px: f64,
    /// Pectoral muscle, for lateral and oblique views.
    pub muscle: Option<Muscle>,
    /// Implant, if any.
    pub implant: Option<Implant>,
}

/// What the geometry says about one pixel.
#[derive(Debug, Clone, Copy)]
pub struct PixelAnatomy {
    /// Along the nipple axis from the outline centre, px.
    pub s: f64,
    /// Across the nipple axis, px (positive = down in the canonical frame).
    pub t: f64,
    /// Normalised outline radius (< 1 inside).
    pub rho: f64,
    /// Relative compressed thickness, 1 in the centre, 0 at the skin edge.
    pub thickness: f64,
    /// Distance to the skin edge, px (approximate; positive inside).
    pub edge_px: f64,
    /// Pectoral muscle depth in [0, 1] (0 = outside the muscle).
    pub muscle: f64,
    /// Implant dome height in [0, 1] (0 = outside).
    pub implant: f64,
}

impl PixelAnatomy {
    /// Inside the breast (tissue or muscle).
    pub fn inside(&self) -> bool {
        self.rho < 1.0 || self.muscle > 0.0
    }
}

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

impl BreastGeometry {
    /// Draws a plausible geometry for `view` on a `width` x `height` detector. `size` (about
    /// 0.8-1.15) is a property of the breast, shared by its views.
    pub fn sample(
        rng: &mut Rng,
        width: u32,
        height: u32,
        view: View,
        laterality: Laterality,
        size: f64,
        implant: bool,
    ) -> Self {
        let (w, h) = (width as f64, height as f64);
        let oblique = view.shows_muscle();
        let mut a = w * rng.range(0.64, 0.84) * size;
        let cx = -a * rng.range(0.05, 0.12);
        a = a.min(0.93 * w - cx);
        let (cy, mut b, tilt) = if oblique {
            let tilt = match view {
                View::ML | View::LM => rng.range(0.04, 0.14),
                _ => rng.range(0.14, 0.30),
            };
            (
                h * rng.range(0.36, 0.46),
                h * rng.range(0.50, 0.60) * size.sqrt(),
                tilt,
            )
        } else {
            (
                h * (0.5 + 0.03 * rng.normal()),
                h * rng.range(0.34, 0.43) * size.sqrt(),
                0.03 * rng.normal(),
            )
        };
        // Keep the lowest point (and, for CC, the highest) on the detector.
        let reach = |a: f64, b: f64| ((a * tilt.sin()).powi(2) + (b * tilt.cos()).powi(2)).sqrt();
        while cy + reach(a, b) > 0.97 * h || (!oblique && cy - reach(a, b) < 0.03 * h) {
            b *= 0.97;
        }
        let mut harmonics = [(0.0, 0.0); 3];
        for (k, hk) in harmonics.iter_mut().enumerate() {
            *hk = (
                rng.range(0.0, 0.035) / (k as f64 + 1.0),
                rng.range(0.0, std::f64::consts::TAU),
            );
        }
        let muscle = oblique.then(|| {
            let lateral = matches!(view, View::ML | View::LM);
            let scale = if lateral { 0.7 } else { 1.0 };
            Muscle {
                top: w * rng.range(0.20, 0.38) * scale,
                side: h * rng.range(0.40, 0.70) * scale,
                bulge: rng.range(1.0, 1.5),
            }
        });
        let implant = implant.then(|| {
            let depth = a - cx.abs();
            Implant {
                s: cx.abs() + 0.32 * depth,
                ra: 0.30 * depth,
                rb: 0.55 * b,
            }
        });
        let diag = (w * w + h * h).sqrt();
        BreastGeometry {
            width,
            height,
            flip: laterality == Laterality::R,
            cx,
            cy,
            a,
            b,
            tilt,
            harmonics,
            rolloff_start: rng.range(0.86, 0.92),
            skin_px: (diag * 0.0012).max(0.7),
            muscle,
            implant,
        }
    }

    /// Canonical x of an image column (mirrors right breasts).
    pub fn canonical_x(&self, x: f64) -> f64 {
        if self.flip { self.width as f64 - x } else { x }
    }

    /// Image position (x, y) of a point given in the rotated frame (s, t).
    pub fn frame_to_image(&self, s: f64, t: f64) -> (f64, f64) {
        let (sn, cs) = self.tilt.sin_cos();
        let xc = self.cx + s * cs - t * sn;
        let y = self.cy + s * sn + t * cs;
        (self.canonical_x(xc), y)
    }

    /// `s` where the nipple axis meets the chest wall (x = 0).
    pub fn s_chest_wall(&self) -> f64 {
        -self.cx / self.tilt.cos()
    }

    /// Radius scale of the outline at polar angle `theta` (harmonic wobble).
    fn wobble(&self, theta: f64) -> f64 {
        let mut f = 1.0;
        for (k, &(amp, phase)) in self.harmonics.iter().enumerate() {
            f += amp * ((k as f64 + 2.0) * theta + phase).cos();
        }
        f
    }

    /// Distance of the nipple from the outline centre along the axis.
    pub fn nipple_s(&self) -> f64 {
        self.a * self.wobble(0.0)
    }

    /// Normalised depth from the chest wall (0) to the nipple (1) of frame coordinate `s`.
    pub fn depth_fraction(&self, s: f64) -> f64 {
        let s0 = self.s_chest_wall();
        (s - s0) / (self.nipple_s() - s0)
    }

    /// Evaluates the anatomy at the centre of pixel (x, y) of the stored image.
    pub fn at(&self, x: f64, y: f64) -> PixelAnatomy {
        let xc = self.canonical_x(x) - self.cx;
        let yc = y - self.cy;
        let (sn, cs) = self.tilt.sin_cos();
        let s = xc * cs + yc * sn;
        let t = -xc * sn + yc * cs;
        let (u, v) = (s / self.a, t / self.b);
        let r = (u * u + v * v).sqrt();
        let rho = r / self.wobble(v.atan2(u));
        let thickness = if rho >= 1.0 {
            0.0
        } else if rho <= self.rolloff_start {
            1.0
        } else {
            // Semicircular edge of a compressed breast seen side-on.
            let z = (rho - self.rolloff_start) / (1.0 - self.rolloff_start);
            (1.0 - z * z).sqrt()
        };
        let radius_px = (s * s + t * t).sqrt() / rho.max(1e-6);
        let edge_px = (1.0 - rho) * radius_px;
        let muscle = self.muscle.map_or(0.0, |m| {
            // Super-ellipse corner: exponent > 1 bows the muscle edge out into the breast.
            let (fx, fy) = (
                (self.canonical_x(x) / m.top).max(0.0),
                (y / m.side).max(0.0),
            );
            let grad = (1.0 / (m.top * m.top) + 1.0 / (m.side * m.side)).sqrt();
            let soft = (self.height as f64 * 0.003).max(0.5);
            // The super-ellipse norm is at least max(fx, fy): far pixels are outside.
            if fx.max(fy) >= 1.0 + soft * grad {
                return 0.0;
            }
            let inside = 1.0 - (fx.powf(m.bulge) + fy.powf(m.bulge)).powf(1.0 / m.bulge);
            // Signed distance (px) to the muscle edge, roughly: value / gradient.
            let d = inside / grad;
            if d <= -soft {
                0.0
            } else {
                smoothstep(-soft, soft, d) * (0.55 + 0.45 * inside.clamp(0.0, 1.0))
            }
        });
        let implant = self.implant.map_or(0.0, |im| {
            let q = ((s - im.s) / im.ra).powi(2) + (t / im.rb).powi(2);
            if q >= 1.0 { 0.0 } else { (1.0 - q).sqrt() }
        });
        PixelAnatomy {
            s,
            t,
            rho,
            thickness,
            edge_px,
            muscle,
            implant,
        }
    }

    /// Whether every pixel of the box `[x0, x1) x [y0, y1)` is breast parenchyma: inside
    /// the outline by a margin (normalised radius below `max_rho`), outside the pectoral
    /// muscle and the implant.
    pub fn box_in_parenchyma(&self, x0: i64, y0: i64, x1: i64, y1: i64, max_rho: f64) -> bool {
        if x0 < 0
            || y0 < 0
            || x1 > self.width as i64
            || y1 > self.height as i64
            || x0 >= x1
            || y0 >= y1
        {
            return false;
        }
        let ok = |x: i64, y: i64| {
            let p = self.at(x as f64 + 0.5, y as f64 + 0.5);
            p.rho < max_rho && p.muscle == 0.0 && p.implant == 0.0
        };
        // The whole perimeter, then the interior on a 3-pixel grid: the excluded regions
        // (outside, muscle, implant) are all far larger than 3 pixels.
        let edges = (x0..x1).all(|x| ok(x, y0) && ok(x, y1 - 1))
            && (y0..y1).all(|y| ok(x0, y) && ok(x1 - 1, y));
        edges
            && (y0..y1)
                .step_by(3)
                .all(|y| (x0..x1).step_by(3).all(|x| ok(x, y)))
    }

    /// Projects a 3-D site of the breast into this view. `depth` runs from the chest wall (0)
    /// to the nipple (1); `radial` (0-1) and `clock` (radians; 0 lateral, pi/2 superior) place
    /// it in the cross-section. Returns image (x, y).
    pub fn project(&self, view: View, depth: f64, radial: f64, clock: f64) -> (f64, f64) {
        let s0 = self.s_chest_wall();
        let s = s0 + depth * (self.nipple_s() - s0);
        let half = 0.85 * self.b * (1.0 - (s / self.a).powi(2)).max(0.0).sqrt();
        // Up in the image is -t; the vertical image axis sees the component along the
        // projection's obliquity.
        let t = -radial * (clock - view.obliquity()).cos() * half;
        self.frame_to_image(s, t)
    }

    /// Fibroglandular envelope in [0, 1]: tissue is confined to the breast, fades out in the
    /// subcutaneous fat near the skin and is concentrated toward the chest wall and the
    /// nipple axis.
    pub fn gland_envelope(&self, p: &PixelAnatomy) -> f64 {
        if p.rho >= 1.0 {
            return 0.0;
        }
        let depth = self.depth_fraction(p.s).clamp(0.0, 1.0);
        let across = (p.t / self.b).abs();
        (1.0 - smoothstep(0.55, 0.93, p.rho))
            * (0.55 + 0.45 * (1.0 - depth))
            * (1.0 - 0.45 * across.min(1.0))
            * (1.0 - p.muscle.min(1.0))
    }
}
