//! The one progress bar every long mammo command shows on standard error.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps labelled `prefix` (`preprocess`, `train fold 0`, `gan 64px`), with
/// the count, a message, the rate and the time left; hidden when `show` is false (`--quiet`,
/// not a terminal, tests), so callers update it either way.
pub fn progress_bar(show: bool, len: u64, prefix: impl Into<String>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({per_sec}, {elapsed}<{eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix.into());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_bar_still_counts() {
        let bar = progress_bar(false, 10, "x");
        assert!(bar.is_hidden());
        bar.inc(3);
        assert_eq!(bar.position(), 3);
        let shown = progress_bar(true, 10, "x");
        assert_eq!((shown.length(), shown.prefix().as_str()), (Some(10), "x"));
    }
}
