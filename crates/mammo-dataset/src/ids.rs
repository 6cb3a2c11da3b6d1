//! Ids that name files: a CSV's `patient_id` and `image_id` become
//! `<patient_id>/<image_id>.dcm` to read and `<size>/<patient_id>/<image_id>.png` to write,
//! so each must be one path component.

/// Checks that a CSV id can be one path component below its root: not empty, not `.` or
/// `..`, no path separator, drive colon, NUL or other control character. Ids name files
/// (`<patient_id>/<image_id>.dcm`, `<size>/<patient_id>/<image_id>.png`), so an id that
/// fails here could read or write outside `--images` or `--out`.
pub fn check_path_id(field: &'static str, value: &str) -> Result<(), PathIdError> {
    if value.is_empty() {
        return Err(PathIdError::Empty { field });
    }
    if value == "." || value == ".." {
        return Err(PathIdError::Dots {
            field,
            value: value.into(),
        });
    }
    if let Some(c) = value
        .chars()
        .find(|&c| c == '/' || c == '\\' || c == ':' || c.is_control())
    {
        return Err(PathIdError::Char {
            field,
            value: value.into(),
            found: c,
        });
    }
    Ok(())
}

/// Why a CSV id cannot be one path component ([`check_path_id`]); `field` names the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathIdError {
    #[error("empty {field}")]
    Empty { field: &'static str },
    #[error("{field} {value:?} is not a file name")]
    Dots { field: &'static str, value: String },
    #[error("{field} {value:?} holds {found:?}, which cannot be part of a file name here")]
    Char {
        field: &'static str,
        value: String,
        found: char,
    },
}
