//! The simulated acquisition devices. Each is modelled loosely on a vendor family found in
//! the RSNA Screening Mammography data (machine ids reused from there); every property that
//! changes how a file must be read differs between at least two machines.

use serde::Serialize;

/// PS3.3 C.7.6.3.1.2 Photometric Interpretation of a grayscale image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Photometric {
    /// Minimum stored value is displayed black (high attenuation = high value).
    Monochrome2,
    /// Minimum stored value is displayed white: stored values are inverted.
    Monochrome1,
}

impl Photometric {
    /// The DICOM code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Photometric::Monochrome2 => "MONOCHROME2",
            Photometric::Monochrome1 => "MONOCHROME1",
        }
    }
}

/// PS3.3 C.11.2.1.3 VOI LUT Function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VoiFunction {
    /// C.11.2.1.2.1, the default linear window.
    Linear,
    /// C.11.2.1.3.1 sigmoid window.
    Sigmoid,
}

impl VoiFunction {
    /// The DICOM code string.
    pub fn as_str(self) -> &'static str {
        match self {
            VoiFunction::Linear => "LINEAR",
            VoiFunction::Sigmoid => "SIGMOID",
        }
    }
}

/// How the pixel data of a machine's files are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PixelEncoding {
    /// JPEG 2000 Image Compression (Lossless Only) with a JP2 file as the fragment, as in the
    /// RSNA files.
    J2kJp2,
    /// The same transfer syntax with a bare codestream (what PS3.5 A.4.4 prescribes).
    J2kCodestream,
    /// Native pixel data, Explicit VR Little Endian.
    ExplicitLittle,
}

impl PixelEncoding {
    /// Transfer Syntax UID of the file.
    pub fn transfer_syntax(self) -> &'static str {
        match self {
            PixelEncoding::J2kJp2 | PixelEncoding::J2kCodestream => "1.2.840.10008.1.2.4.90",
            PixelEncoding::ExplicitLittle => "1.2.840.10008.1.2.1",
        }
    }

    /// Short name for tables and logs.
    pub fn label(self) -> &'static str {
        match self {
            PixelEncoding::J2kJp2 => "J2K lossless (JP2)",
            PixelEncoding::J2kCodestream => "J2K lossless (codestream)",
            PixelEncoding::ExplicitLittle => "Explicit VR LE",
        }
    }
}

/// One simulated mammography unit.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `machine_id` in train.csv.
    pub machine_id: u32,
    /// `site_id` in train.csv.
    pub site_id: u32,
    /// Manufacturer (0008,0070).
    pub manufacturer: &'static str,
    /// Manufacturer's Model Name (0008,1090).
    pub model: &'static str,
    /// Detector matrix at full size: Columns (width).
    pub width: u32,
    /// Detector matrix at full size: Rows (height).
    pub height: u32,
    /// Pixel pitch at full size, mm.
    pub pixel_mm: f64,
    /// Bits Stored (Bits Allocated is always 16).
    pub bits_stored: u32,
    /// Photometric Interpretation.
    pub photometric: Photometric,
    /// VOI LUT Function written with the windows.
    pub voi: VoiFunction,
    /// How many Window Center/Width pairs the files carry (1-3).
    pub windows: usize,
    /// Whether Rescale Slope/Intercept (1/0) are written.
    pub rescale: bool,
    /// Pixel data encoding.
    pub encoding: PixelEncoding,
    /// Relative share of patients (studies) imaged on this machine.
    pub share: f64,
    /// Fraction of the stored range that one unit of attenuation spans (display gain).
    pub gain: f64,
}

impl Machine {
    /// Largest stored value.
    pub fn max_value(&self) -> u32 {
        (1u32 << self.bits_stored) - 1
    }
}

/// The machine table. Shares: the SIGMOID machine (29) takes about a fifth of the images,
/// as SIGMOID does in RSNA.
pub fn machines() -> &'static [Machine] {
    use Photometric::*;
    use PixelEncoding::*;
    use VoiFunction::*;
    static TABLE: [Machine; 6] = [
        Machine {
            machine_id: 49,
            site_id: 1,
            manufacturer: "HOLOGIC, Inc.",
            model: "Selenia Dimensions",
            width: 2560,
            height: 3328,
            pixel_mm: 0.065,
            bits_stored: 12,
            photometric: Monochrome2,
            voi: Linear,
            windows: 3,
            rescale: true,
            encoding: J2kJp2,
            share: 0.36,
            gain: 0.30,
        },
        Machine {
            machine_id: 48,
            site_id: 1,
            manufacturer: "HOLOGIC, Inc.",
            model: "Lorad Selenia",
            width: 2560,
            height: 3328,
            pixel_mm: 0.070,
            bits_stored: 14,
            photometric: Monochrome2,
            voi: Linear,
            windows: 1,
            rescale: false,
            encoding: J2kJp2,
            share: 0.18,
            gain: 0.28,
        },
        Machine {
            machine_id: 29,
            site_id: 2,
            manufacturer: "GE MEDICAL SYSTEMS",
            model: "Senographe Essential",
            width: 2394,
            height: 3062,
            pixel_mm: 0.094,
            bits_stored: 14,
            photometric: Monochrome1,
            voi: Sigmoid,
            windows: 2,
            rescale: true,
            encoding: J2kJp2,
            share: 0.21,
            gain: 0.26,
        },
        Machine {
            machine_id: 21,
            site_id: 2,
            manufacturer: "SIEMENS",
            model: "Mammomat Inspiration",
            width: 2082,
            height: 2776,
            pixel_mm: 0.085,
            bits_stored: 12,
            photometric: Monochrome2,
            voi: Linear,
            windows: 2,
            rescale: false,
            encoding: J2kCodestream,
            share: 0.11,
            gain: 0.31,
        },
        Machine {
            machine_id: 93,
            site_id: 1,
            manufacturer: "FUJIFILM Corporation",
            model: "AMULET Innovality",
            width: 2294,
            height: 2912,
            pixel_mm: 0.075,
            bits_stored: 16,
            photometric: Monochrome1,
            voi: Linear,
            windows: 1,
            rescale: true,
            encoding: ExplicitLittle,
            share: 0.08,
            gain: 0.27,
        },
        Machine {
            machine_id: 216,
            site_id: 1,
            manufacturer: "Planmed",
            model: "Nuance Classic",
            width: 2360,
            height: 3000,
            pixel_mm: 0.085,
            bits_stored: 16,
            photometric: Monochrome2,
            voi: Linear,
            windows: 1,
            rescale: false,
            encoding: ExplicitLittle,
            share: 0.06,
            gain: 0.29,
        },
    ];
    &TABLE
}

/// The machine with this id.
pub fn machine(machine_id: u32) -> Option<&'static Machine> {
    machines().iter().find(|m| m.machine_id == machine_id)
}
