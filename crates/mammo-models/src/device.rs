//! Picking the compute device by name, for a `--device` option.

use burn::tensor::Device;

use crate::error::{ModelError, Result};

#[cfg(feature = "cuda")]
const EXPECTED: &str = "flex, cuda, cuda:<index>";
#[cfg(not(feature = "cuda"))]
const EXPECTED: &str = "flex (build with feature `cuda` for cuda:<index>)";

/// `"flex"` (pure-Rust CPU, always available), `"cuda"` / `"cuda:<index>"` (feature `cuda`).
///
/// The device is plain (inference); call `.autodiff()` on it to train.
pub fn parse_device(name: &str) -> Result<Device> {
    let unknown = || ModelError::UnknownDevice {
        name: name.to_string(),
        expected: EXPECTED,
    };
    match name {
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(feature = "cuda")]
        other if other.starts_with("cuda:") => {
            let index: usize = other["cuda:".len()..].parse().map_err(|_| unknown())?;
            Ok(Device::cuda(index))
        }
        _ => Err(unknown()),
    }
}
