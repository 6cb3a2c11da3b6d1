use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mammo_dicom::{DicomImage, Renderer, VoiChoice, quantize};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The DICOM file to read.
    pub input: PathBuf,
    /// The PNG to write (grayscale).
    pub output: PathBuf,
    /// PNG bit depth.
    #[arg(long, default_value_t = 8, value_parser = crate::cmd::parse_bits)]
    pub bits: u32,
    /// VOI transform: `first` window or LUT of the file (min-max if it has none), `none`
    /// (min-max of the image's modality values), or a 0-based index.
    #[arg(long, default_value = "first")]
    pub voi: VoiChoice,
    /// Frame of a multi-frame image (0-based).
    #[arg(long, default_value_t = 0)]
    pub frame: u32,
}

pub fn run(a: Args) -> Result<Outcome> {
    let image = DicomImage::open(&a.input)?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let frame = image.decode_with_threads(a.frame, 0, threads)?;
    let rendered = Renderer::new(a.voi)
        .render(image.meta(), &frame)
        .map_err(|e| anyhow::anyhow!("cannot render {}: {e}", a.input.display()))?;
    if rendered.data.is_empty() {
        bail!("{}: empty image", a.input.display());
    }
    let px = quantize(&rendered.data, a.bits);
    mammo_image::write_png_gray(&a.output, rendered.width, rendered.height, &px, a.bits)
        .with_context(|| format!("converting {}", a.input.display()))?;
    eprintln!(
        "{} -> {} ({}x{}, {} bit, VOI {}{})",
        a.input.display(),
        a.output.display(),
        rendered.width,
        rendered.height,
        a.bits,
        rendered.voi_used,
        if rendered.inverted {
            ", MONOCHROME1 inverted"
        } else {
            ""
        }
    );
    Ok(Outcome::Ok)
}
