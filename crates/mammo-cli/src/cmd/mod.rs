pub mod bench;
pub mod convert;
pub mod eval;
pub mod experiment;
pub mod explain;
pub mod gan;
pub mod phantom;
pub mod predict;
pub mod preprocess;
pub mod train;

/// `--bits`: 8 or 16.
pub fn parse_bits(s: &str) -> Result<u32, String> {
    match s {
        "8" => Ok(8),
        "16" => Ok(16),
        o => Err(format!("{o}: PNG depth is 8 or 16")),
    }
}
