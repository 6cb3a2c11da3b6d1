//! Picking the compute device by name, for a `--device` option or a config's `device` key.
//!
//! The spellings are `flex` (burn's pure-Rust CPU backend, always compiled in), `vulkan` /
//! `vulkan:N` (feature `vulkan`, on by default), `cuda` / `cuda:N` (feature `cuda`) and `auto`.
//! Parsing ([`DeviceSpec::from_str`]) fails for a backend this build lacks; [`DeviceSpec::open`]
//! fails for a device this machine lacks. Both errors list what the build and machine have, so
//! the command line can report them as usage errors.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// A device as a user names it: resolved to a [`Device`] by [`DeviceSpec::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// The best device compiled in and present: a CUDA GPU, then a Vulkan GPU (hardware, not a
    /// software rasteriser such as lavapipe), then flex.
    #[default]
    Auto,
    /// burn's pure-Rust CPU backend, with mammo's fused kernels.
    Flex,
    /// A Vulkan adapter (wgpu, SPIR-V). `None`: the first one listed (GPUs before CPU adapters).
    Vulkan(Option<usize>),
    /// A CUDA device by ordinal. `None`: device 0.
    Cuda(Option<usize>),
}

/// Why a device name or device cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The name is not a device spelling, or names a backend this binary was built without.
    #[error("unknown device {name:?}: {reason}; this build has: {}", compiled_in())]
    Unknown { name: String, reason: String },
    /// The backend is compiled in but the machine has no such device.
    #[error("device {spec} is not present on this machine; available: {}", available.join(", "))]
    Absent {
        spec: DeviceSpec,
        available: Vec<String>,
    },
}

/// The backends this build can run, in the spelling `--device` takes.
pub fn compiled_in() -> String {
    let mut names = vec!["auto", "flex"];
    if cfg!(feature = "vulkan") {
        names.push("vulkan[:N]");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda[:N]");
    }
    let mut s = names.join(", ");
    if !cfg!(feature = "vulkan") {
        s.push_str(" (vulkan needs a build with feature `vulkan`)");
    }
    if !cfg!(feature = "cuda") {
        s.push_str(" (cuda needs a build with feature `cuda`)");
    }
    s
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(name: &str) -> Result<Self, DeviceError> {
        let unknown = |reason: &str| DeviceError::Unknown {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let (backend, index) = match name.split_once(':') {
            Some((b, i)) => {
                let i: usize = i
                    .parse()
                    .map_err(|_| unknown("the index after ':' must be a whole number >= 0"))?;
                (b, Some(i))
            }
            None => (name, None),
        };
        match (backend, index) {
            ("auto", None) => Ok(Self::Auto),
            ("flex", None) => Ok(Self::Flex),
            ("auto" | "flex", Some(_)) => Err(unknown("takes no index")),
            ("vulkan", i) if cfg!(feature = "vulkan") => Ok(Self::Vulkan(i)),
            ("cuda", i) if cfg!(feature = "cuda") => Ok(Self::Cuda(i)),
            ("vulkan" | "cuda", _) => Err(unknown("this binary was built without that backend")),
            _ => Err(unknown("not a device name")),
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = DeviceError;
    fn try_from(s: String) -> Result<Self, DeviceError> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Flex => f.write_str("flex"),
            Self::Vulkan(None) => f.write_str("vulkan"),
            Self::Vulkan(Some(i)) => write!(f, "vulkan:{i}"),
            Self::Cuda(None) => f.write_str("cuda"),
            Self::Cuda(Some(i)) => write!(f, "cuda:{i}"),
        }
    }
}

/// A device that [`DeviceSpec::open`] found, with the name it goes by in logs and reports.
#[derive(Debug, Clone)]
pub struct OpenDevice {
    /// The plain (inference) device; call `.autodiff()` on it to train.
    pub device: Device,
    /// What was asked for resolved to a concrete device: `flex`, `vulkan:0`, `cuda:1`.
    pub spec: DeviceSpec,
    /// The adapter's own name where the backend reports one (`NVIDIA H200`, `llvmpipe (...)`).
    pub name: String,
}

impl fmt::Display for OpenDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.spec, self.name)
    }
}

impl DeviceSpec {
    /// Resolves the spec to a device on this machine. `auto` never fails: flex is always there.
    pub fn open(self) -> Result<OpenDevice, DeviceError> {
        let absent = || DeviceError::Absent {
            spec: self,
            available: available(),
        };
        match self {
            Self::Flex => Ok(flex()),
            Self::Auto => Ok(auto()),
            Self::Vulkan(i) => vulkan_devices()
                .into_iter()
                .nth(i.unwrap_or(0))
                .map(Listed::open)
                .ok_or_else(absent),
            Self::Cuda(i) => cuda_devices()
                .into_iter()
                .nth(i.unwrap_or(0))
                .map(Listed::open)
                .ok_or_else(absent),
        }
    }
}

fn flex() -> OpenDevice {
    OpenDevice {
        device: Device::flex(),
        spec: DeviceSpec::Flex,
        name: "CPU, pure Rust".into(),
    }
}

/// A CUDA GPU, else a hardware Vulkan adapter, else flex. A software Vulkan (lavapipe,
/// llvmpipe, SwiftShader) is slower than flex on the same cores, so `auto` passes it over;
/// `--device vulkan` still reaches it.
fn auto() -> OpenDevice {
    if let Some(d) = cuda_devices().into_iter().next() {
        return d.open();
    }
    if let Some(d) = vulkan_devices().into_iter().find(|d| !d.software) {
        return d.open();
    }
    flex()
}

/// Every device the machine offers this build, as `--device` spells them, with their names.
/// Opens each device to ask its name.
pub fn available() -> Vec<String> {
    let mut out = vec![flex().to_string()];
    for d in cuda_devices().into_iter().chain(vulkan_devices()) {
        let software = d.software;
        let s = d.open().to_string();
        out.push(if software {
            format!("{s} [software]")
        } else {
            s
        });
    }
    out
}

/// A device a backend lists, not yet opened.
struct Listed {
    device: Device,
    spec: DeviceSpec,
    /// A CPU adapter: lavapipe and the like.
    software: bool,
}

impl Listed {
    /// Opens the device and asks its name.
    fn open(self) -> OpenDevice {
        let name = device_name(&self.device).unwrap_or_else(|| match self.spec {
            DeviceSpec::Cuda(_) => "CUDA device".to_string(),
            _ => "Vulkan adapter".to_string(),
        });
        OpenDevice {
            device: self.device,
            spec: self.spec,
            name,
        }
    }
}

#[cfg(any(feature = "vulkan", feature = "cuda"))]
fn device_name(device: &Device) -> Option<String> {
    device.identity().map(|id| id.name)
}

#[cfg(not(any(feature = "vulkan", feature = "cuda")))]
fn device_name(_: &Device) -> Option<String> {
    None
}

/// The Vulkan adapters in burn's order (discrete, integrated, virtual GPUs, then CPU adapters).
/// Empty without the `vulkan` feature, or where no Vulkan loader or driver is installed.
#[cfg(feature = "vulkan")]
fn vulkan_devices() -> Vec<Listed> {
    use burn::backend::{CubeDevice, DispatchDevice, WgpuDeviceKind};
    use burn::tensor::DeviceType;

    // wgpu opens the loader (libvulkan.so.1) at run time; a machine without one lists nothing.
    let devices = std::panic::catch_unwind(|| Device::enumerate(DeviceType::Vulkan).into_vec())
        .unwrap_or_default();
    devices
        .into_iter()
        .enumerate()
        .map(|(i, device)| {
            let software = matches!(
                device.as_dispatch(),
                DispatchDevice::Cube(CubeDevice::Wgpu(w)) if matches!(w.kind, WgpuDeviceKind::Cpu)
            );
            Listed {
                device,
                spec: DeviceSpec::Vulkan(Some(i)),
                software,
            }
        })
        .collect()
}

#[cfg(not(feature = "vulkan"))]
fn vulkan_devices() -> Vec<Listed> {
    Vec::new()
}

/// The CUDA devices by ordinal. Empty without the `cuda` feature or a CUDA driver.
#[cfg(feature = "cuda")]
fn cuda_devices() -> Vec<Listed> {
    use burn::tensor::DeviceType;
    let devices = std::panic::catch_unwind(|| Device::enumerate(DeviceType::Cuda).into_vec())
        .unwrap_or_default();
    devices
        .into_iter()
        .enumerate()
        .map(|(i, device)| Listed {
            device,
            spec: DeviceSpec::Cuda(Some(i)),
            software: false,
        })
        .collect()
}

#[cfg(not(feature = "cuda"))]
fn cuda_devices() -> Vec<Listed> {
    Vec::new()
}

/// The device for a name, for callers that do not need the resolved name: `parse` then `open`.
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    Ok(name.parse::<DeviceSpec>()?.open()?.device)
}

/// Environment variable that turns the vulkan tests on. Unset: they are skipped (with a note on
/// stderr). `ci`: the tests of [`VulkanTier::Ci`] run, those that pass on Mesa's lavapipe within
/// CI's time (CI sets this). `1` or `all`: every vulkan test. They are opt-in because on a
/// machine without a GPU they run on lavapipe, a CPU Vulkan, where every kernel is compiled by
/// LLVM and autotuned: minutes, not seconds. When set, a missing Vulkan device fails the test
/// instead of skipping it.
pub const TEST_VULKAN_ENV: &str = "MAMMO_TEST_VULKAN";

/// Which vulkan tests a [`TEST_VULKAN_ENV`] value turns on.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VulkanTier {
    /// Runs on lavapipe in CI (`MAMMO_TEST_VULKAN=ci`, `1` or `all`).
    Ci,
    /// Runs only when every vulkan test is asked for (`MAMMO_TEST_VULKAN=1` or `all`): not yet
    /// passing on lavapipe, or too slow there for CI.
    Full,
}

/// Environment variable naming the models the vulkan parity test compares (comma-separated
/// timm names, or `all`). Unset: resnet18, whose first autotuned training step takes about two
/// minutes on lavapipe (efficientnet_b0 takes over ten).
pub const TEST_VULKAN_MODELS_ENV: &str = "MAMMO_TEST_VULKAN_MODELS";

/// The models the vulkan parity test covers, in registry order (see
/// [`TEST_VULKAN_MODELS_ENV`]). Panics on a name that is not registered.
#[doc(hidden)]
pub fn vulkan_test_models() -> Vec<&'static str> {
    let all = crate::MODELS.iter().map(|s| s.name);
    match std::env::var(TEST_VULKAN_MODELS_ENV) {
        Ok(v) if v.trim() == "all" => all.collect(),
        Ok(v) => {
            let wanted: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            for w in &wanted {
                assert!(
                    crate::MODELS.iter().any(|s| s.name == *w),
                    "{TEST_VULKAN_MODELS_ENV}: {w:?} is not a registered model"
                );
            }
            all.filter(|n| wanted.contains(n)).collect()
        }
        Err(_) => all.filter(|n| *n == "resnet18").collect(),
    }
}

/// The Vulkan device the vulkan tests of `tier` run on: the first listed. `None`, with a note on
/// stderr, unless [`TEST_VULKAN_ENV`] turns that tier on; then panics where the build lacks
/// `vulkan` or the machine a Vulkan driver.
#[doc(hidden)]
pub fn vulkan_for_tests_at(tier: VulkanTier) -> Option<OpenDevice> {
    let value = std::env::var(TEST_VULKAN_ENV).unwrap_or_default();
    let on = match value.trim() {
        "1" | "all" => true,
        "ci" => tier == VulkanTier::Ci,
        "" | "0" => false,
        other => panic!("{TEST_VULKAN_ENV}={other:?}: expected ci, 1 or all"),
    };
    if !on {
        eprintln!(
            "vulkan test skipped: set {TEST_VULKAN_ENV}={} to run it on a Vulkan device",
            if tier == VulkanTier::Ci { "ci" } else { "all" }
        );
        return None;
    }
    match vulkan_devices().into_iter().next().map(Listed::open) {
        Some(d) => Some(d),
        None => panic!(
            "{TEST_VULKAN_ENV}={value} but this {} has no Vulkan device",
            if cfg!(feature = "vulkan") {
                "machine"
            } else {
                "build (feature `vulkan` is off)"
            }
        ),
    }
}

/// [`vulkan_for_tests_at`] for a test that is not yet part of CI's run ([`VulkanTier::Full`]).
#[doc(hidden)]
pub fn vulkan_for_tests() -> Option<OpenDevice> {
    vulkan_for_tests_at(VulkanTier::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for s in ["auto", "flex"] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap().to_string(), s);
        }
        if cfg!(feature = "vulkan") {
            for s in ["vulkan", "vulkan:0", "vulkan:3"] {
                assert_eq!(s.parse::<DeviceSpec>().unwrap().to_string(), s);
            }
        }
    }

    #[test]
    fn bad_names_say_what_the_build_has() {
        for bad in ["gpu", "flex:0", "vulkan:x", "vulkan:-1", "", "cuda:"] {
            let e = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(e.contains("auto, flex"), "{bad}: {e}");
        }
        if !cfg!(feature = "cuda") {
            let e = "cuda:0".parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(e.contains("built without"), "{e}");
        }
    }

    #[test]
    fn flex_and_auto_always_open() {
        assert_eq!(DeviceSpec::Flex.open().unwrap().spec, DeviceSpec::Flex);
        let auto = DeviceSpec::Auto.open().unwrap();
        assert!(
            !matches!(auto.spec, DeviceSpec::Auto),
            "auto resolves to a concrete device"
        );
    }

    #[test]
    fn absent_index_lists_what_is_there() {
        if cfg!(feature = "vulkan") {
            let e = DeviceSpec::Vulkan(Some(999))
                .open()
                .unwrap_err()
                .to_string();
            assert!(e.contains("not present") && e.contains("flex"), "{e}");
        }
    }
}
