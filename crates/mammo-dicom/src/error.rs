use std::path::PathBuf;

/// Errors of this crate. Every variant names the file and says why.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// The file could not be read or parsed as DICOM. The message holds the cause's whole
    /// chain (dicom-rs nests its errors); the cause stays typed.
    #[error("cannot read {}: {}", path.display(), chain(cause.as_ref()))]
    Read {
        path: PathBuf,
        #[source]
        cause: Cause,
    },
    /// The data set lacks or contradicts an attribute needed to interpret the image.
    #[error("cannot use {}: {reason}", path.display())]
    Header { path: PathBuf, reason: String },
    /// The header describes an image larger than the limit: refused before allocating it.
    #[error("refusing {}: {reason}", path.display())]
    TooLarge { path: PathBuf, reason: String },
    /// The pixel data could not be decoded.
    #[error(
        "cannot decode {}: transfer syntax {transfer_syntax}: {}",
        path.display(),
        chain(cause.as_ref())
    )]
    Decode {
        path: PathBuf,
        transfer_syntax: String,
        #[source]
        cause: Cause,
    },
}

/// Why a file could not be read or decoded: an I/O, parser or codec error, kept typed, or
/// this crate's own message.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Joins an error and its sources into one line (`a: b: c`), leaving out a cause whose text
/// the line already holds (`mammo serve` answers with it).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
