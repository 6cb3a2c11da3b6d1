//! Labels: the one parser of every spelling a screening CSV uses for "cancer or not".

/// A label value that is none of the accepted spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{column} value {value:?} is not a label (0, 1, 0.0, 1.0, True, False, or empty)")]
pub struct LabelError {
    /// The column it was read from (`cancer` in RSNA's CSVs, `label` in a manifest).
    pub column: &'static str,
    pub value: String,
}

/// A label read from `column`: `0`/`1`, RSNA's float spellings `0.0`/`1.0` and the bool
/// spellings `True`/`False` (any case), surrounding blanks ignored. `Some(true)` is cancer,
/// `Some(false)` not, `None` (empty) an unlabelled image (a test set). Anything else is an
/// error, never a silent "not cancer".
pub fn parse_label(column: &'static str, value: &str) -> Result<Option<bool>, LabelError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.to_ascii_lowercase().as_str() {
        "1" | "1.0" | "true" => Ok(Some(true)),
        "0" | "0.0" | "false" => Ok(Some(false)),
        _ => Err(LabelError {
            column,
            value: v.into(),
        }),
    }
}

/// How a manifest writes a label: `1`, `0`, or empty when unknown.
pub fn label_text(label: Option<bool>) -> &'static str {
    match label {
        Some(true) => "1",
        Some(false) => "0",
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rsna_spelling_reads_and_nothing_else_does() {
        for s in ["1", "1.0", "True", "true", " 1 ", "TRUE"] {
            assert_eq!(parse_label("label", s), Ok(Some(true)), "{s:?}");
        }
        for s in ["0", "0.0", "False", "false", "0 "] {
            assert_eq!(parse_label("label", s), Ok(Some(false)), "{s:?}");
        }
        assert_eq!(parse_label("label", "  "), Ok(None));
        for s in ["2", "yes", "1.5", "NaN", "-1", "01"] {
            let e = parse_label("cancer", s).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "cancer value {:?} is not a label (0, 1, 0.0, 1.0, True, False, or empty)",
                    s.trim()
                )
            );
        }
        for l in [Some(true), Some(false), None] {
            assert_eq!(parse_label("label", label_text(l)), Ok(l));
        }
    }
}
