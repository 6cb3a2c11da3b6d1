//! Dependency-free SVG charts for run folders and reports: line charts (training curves,
//! ROC, FID over time) and confusion matrices. Output is a self-contained SVG string that
//! opens offline in any browser and embeds inline in HTML.

use std::fmt::Write;

/// Colours for successive series (colour-blind-safe Okabe-Ito palette).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
];

/// One line of a [`LineChart`].
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Draw dashed (e.g. a reference line).
    pub dashed: bool,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            dashed: false,
        }
    }
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// A line chart with axes, ticks, a legend and optional fixed ranges.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub width: f64,
    pub height: f64,
    /// Mark each point with a dot (useful for few points, e.g. per-epoch curves).
    pub markers: bool,
}

impl LineChart {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            x_range: None,
            y_range: None,
            width: 480.0,
            height: 340.0,
            markers: false,
        }
    }

    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }

    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    pub fn markers(mut self, on: bool) -> Self {
        self.markers = on;
        self
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let (w, h) = (self.width, self.height);
        let (left, right, top, bottom) = (58.0, 14.0, 30.0, 44.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let finite = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|p| p.0.is_finite() && p.1.is_finite())
        };
        let (x0, x1) = self
            .x_range
            .unwrap_or_else(|| bounds(finite().map(|p| p.0)));
        let (y0, y1) = self
            .y_range
            .unwrap_or_else(|| bounds(finite().map(|p| p.1)));
        let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| top + ph - (y - y0) / (y1 - y0) * ph;

        let mut s = header(w, h);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
            w / 2.0,
            esc(&self.title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
        );
        for t in ticks(x0, x1) {
            let x = sx(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                top + ph,
                top + ph + 14.0,
                fmt_tick(t)
            );
        }
        for t in ticks(y0, y1) {
            let y = sy(t);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 4.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + pw / 2.0,
            h - 8.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"#,
            top + ph / 2.0,
            top + ph / 2.0,
            esc(&self.y_label)
        );
        let _ = writeln!(
            s,
            r#"<clipPath id="plot"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/></clipPath>"#
        );
        for (i, series) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let pts: Vec<String> = series
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let dash = if series.dashed {
                r#" stroke-dasharray="5,4""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<polyline clip-path="url(#plot)" fill="none" stroke="{colour}" stroke-width="1.8"{dash} points="{}"/>"#,
                pts.join(" ")
            );
            if self.markers {
                for p in &pts {
                    let (x, y) = p.split_once(',').expect("x,y");
                    let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="2.6" fill="{colour}"/>"#);
                }
            }
            let ly = top + 14.0 + 15.0 * i as f64;
            let lx = left + pw - 150.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
                ly - 4.0,
                lx + 18.0,
                ly - 4.0,
                lx + 22.0,
                ly,
                esc(&series.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A 2x2 confusion matrix as a shaded grid (rows: truth, columns: prediction), with counts
/// and row percentages, like the paper's Figure 5.
pub fn confusion_svg(title: &str, tn: u64, fp: u64, fn_: u64, tp: u64) -> String {
    let (w, h) = (340.0, 300.0);
    let (left, top, cell) = (110.0, 60.0, 100.0);
    let mut s = header(w, h);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="48" text-anchor="middle">predicted</text>"#,
        left + cell
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">true</text>"#,
        top + cell,
        top + cell
    );
    let rows = [("negative", [tn, fp]), ("positive", [fn_, tp])];
    for (r, (name, counts)) in rows.iter().enumerate() {
        let total: u64 = counts.iter().sum();
        let y = top + cell * r as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{name}</text>"#,
            left - 6.0,
            y + cell / 2.0 + 4.0
        );
        for (c, &n) in counts.iter().enumerate() {
            let frac = if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            };
            let x = left + cell * c as f64;
            // white -> blue by row fraction
            let shade = |full: f64| (255.0 - (255.0 - full) * frac).round() as u8;
            let fill = format!(
                "#{:02x}{:02x}{:02x}",
                shade(0.0),
                shade(114.0),
                shade(178.0)
            );
            let ink = if frac > 0.5 { "#fff" } else { "#000" };
            let _ = writeln!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#444"/>"##
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="18" fill="{ink}">{n}</text>"#,
                x + cell / 2.0,
                y + cell / 2.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{ink}">{:.1} %</text>"#,
                x + cell / 2.0,
                y + cell / 2.0 + 20.0,
                100.0 * frac
            );
            if r == 0 {
                let label = if c == 0 { "negative" } else { "positive" };
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
                    x + cell / 2.0,
                    top - 4.0
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn header(w: f64, h: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} \
         {h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"#fff\"/>\n"
    )
}

/// Escape text for SVG/HTML.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            1.0
        };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

/// "Nice" tick positions (1, 2, 5 x 10^k steps) inside [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return Vec::new();
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn fmt_tick(t: f64) -> String {
    let s = format!("{t:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(
            ticks(0.0, 1.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(fmt_tick(0.6000000000000001), "0.6");
        assert!(ticks(1.0, 1.0).is_empty());
    }

    #[test]
    fn chart_has_series_and_escapes() {
        let svg = LineChart::new("loss <train>", "epoch", "loss")
            .series(Series::new("fold 0", vec![(1.0, 0.7), (2.0, 0.5)]))
            .series(Series::new("fold 1", vec![(1.0, 0.6), (2.0, f64::NAN)]).dashed())
            .markers(true)
            .to_svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("loss &lt;train&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3, "NaN points are dropped");
    }

    #[test]
    fn confusion_counts() {
        let svg = confusion_svg("fold 0", 90, 10, 3, 7);
        for n in ["90", "10", "3", "7", "70.0 %", "90.0 %"] {
            assert!(svg.contains(&format!(">{n}<")), "{n} missing");
        }
    }
}
