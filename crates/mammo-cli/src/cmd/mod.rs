pub mod bench;
pub mod bench_loader;
pub mod bench_models;
pub mod convert;
pub mod eval;
pub mod experiment;
pub mod explain;
pub mod gan;
pub mod phantom;
pub mod predict;
pub mod preprocess;
pub mod serve;
pub mod train;

/// `s` with control characters other than newline and tab escaped (`\0`, `\u{1b}`), so
/// that text from a file (a DICOM string, a CSV cell) cannot put a NUL or a terminal escape
/// into a message.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// `--bits`: 8 or 16.
/// `--select last|best` as a [`mammo_train::Select`], the possible values listed in the help.
pub fn select_parser() -> impl clap::builder::TypedValueParser<Value = mammo_train::Select> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["last", "best"]).map(|s| match s.as_str() {
        "best" => mammo_train::Select::Best,
        _ => mammo_train::Select::Last,
    })
}

pub fn parse_bits(s: &str) -> Result<u32, String> {
    match s {
        "8" => Ok(8),
        "16" => Ok(16),
        o => Err(format!("{o}: PNG depth is 8 or 16")),
    }
}

/// A whole number of at least `MIN`, for counts such as `--folds` or `--batch-size`.
pub fn at_least<const MIN: usize>(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(v) if v >= MIN as i128 && v <= usize::MAX as i128 => Ok(v as usize),
        Ok(v) => Err(format!("{v} is out of range: a whole number >= {MIN}")),
        Err(_) => Err(format!("{s:?} is not a whole number (>= {MIN})")),
    }
}

/// A size in pixels: a whole number in 1..=16384.
pub fn pixels(s: &str) -> Result<u32, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if (1..=16384).contains(&v) => Ok(v as u32),
        Ok(v) => Err(format!("{v} is out of range: pixels in 1..=16384")),
        Err(_) => Err(format!("{s:?} is not a whole number of pixels (1..=16384)")),
    }
}

/// A finite number greater than 0 (a learning rate, a kimg budget).
pub fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is out of range: a finite number > 0")),
        Err(_) => Err(format!("{s:?} is not a number (a finite number > 0)")),
    }
}

/// A finite number of at least 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is out of range: a finite number >= 0")),
        Err(_) => Err(format!("{s:?} is not a number (a finite number >= 0)")),
    }
}

/// A fraction in 0..=1 (a prevalence, a threshold).
pub fn fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is out of range: a number in 0..=1")),
        Err(_) => Err(format!("{s:?} is not a number (in 0..=1)")),
    }
}

/// A mistake in how mammo was called, found after argument parsing (a device this machine
/// lacks, a value out of range): reported like clap's own errors, with exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Turns an error in something the user named (a config file, a flag's value found wrong
/// once combined with others) into a [`UsageError`], keeping its whole chain in the message.
pub fn usage<E: Into<anyhow::Error>>(
    context: impl std::fmt::Display,
) -> impl FnOnce(E) -> UsageError {
    move |e| {
        let e: anyhow::Error = e.into();
        UsageError(format!(
            "{context}: {}",
            mammo_dicom::error_chain(e.as_ref())
        ))
    }
}

/// Opens `--device` and says on stderr which device it resolved to (unless `quiet`). A device
/// that is not present is a usage error listing the devices that are.
pub fn open_device(
    spec: mammo_models::DeviceSpec,
    quiet: bool,
) -> Result<mammo_models::OpenDevice, UsageError> {
    let dev = spec
        .open()
        .map_err(|e| UsageError(format!("--device {spec}: {e}")))?;
    if !quiet {
        eprintln!("device: {dev}");
    }
    Ok(dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_parsers_name_the_range() {
        assert_eq!(at_least::<2>("5"), Ok(5));
        assert!(at_least::<2>("1").unwrap_err().contains(">= 2"));
        assert!(
            at_least::<1>("-6")
                .unwrap_err()
                .contains("-6 is out of range")
        );
        assert!(
            at_least::<1>("x")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert_eq!(pixels("512"), Ok(512));
        assert!(pixels("0").unwrap_err().contains("1..=16384"));
        assert!(positive("nan").unwrap_err().contains("> 0"));
        assert!(positive("inf").is_err() && positive("0").is_err());
        assert_eq!(positive("1e-4"), Ok(1e-4));
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(fraction("1.5").unwrap_err().contains("0..=1"));
    }

    #[test]
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("a\0b"), "a\\u{0}b");
        assert_eq!(printable("x\u{1b}[31m"), "x\\u{1b}[31m");
        assert_eq!(printable("line\nnext\tcol é"), "line\nnext\tcol é");
    }
}
