pub mod bench;
pub mod bench_models;
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
