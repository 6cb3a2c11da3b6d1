use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use mammo_models::DeviceSpec;
use mammo_serve::{DEFAULT_MAX_REQUEST_MB, DEFAULT_QUEUE, Engine, EngineHandle, ServeConfig};
use mammo_train::Select;

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folder written by `mammo train`; its fold ensemble is loaded once.
    #[arg(long)]
    pub run: PathBuf,
    /// Address to listen on. The default answers this machine only; another address exposes
    /// patient images to the network without authentication or TLS (a warning is printed).
    /// Port 0 picks a free port (the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Weights of each fold: `last` or `best` (default: the run's choice).
    #[arg(long, value_parser = super::select_parser())]
    pub select: Option<Select>,
    /// Also write each study's results (Secondary Captures, SR, heat maps, JSON) here, in a
    /// folder named by the SR's series UID.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Largest request accepted, in MB (2^20 bytes); larger ones are answered 413. The
    /// default holds four uncompressed views from the largest mammography detectors.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REQUEST_MB,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_request_mb: u64,
    /// Studies that may wait while one is analysed; a request beyond is answered 503 at once.
    /// At most (N + 1) x --max-request-mb of uploads are held in memory.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QUEUE as u64,
          value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub queue: u64,
}

pub fn run(args: Args) -> Result<Outcome> {
    let device = super::open_device(args.device, false)?.device;
    let select = args.select;
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    if !args.bind.ip().is_loopback() {
        eprintln!(
            "warning: --bind {}: reachable from other machines; mammo serve has no authentication \
             or encryption",
            args.bind
        );
    }
    let run_dir = args.run.clone();
    let engine = EngineHandle::start(
        move || Engine::load(&run_dir, select, &device),
        args.out.clone(),
    )?;
    eprintln!(
        "model: {} ({} folds: {:?}, {} weights) from {}",
        engine.info.architecture,
        engine.info.folds.len(),
        engine.info.folds,
        engine.info.select,
        args.run.display()
    );
    let config = ServeConfig {
        max_request_bytes: args.max_request_mb << 20,
        queue: args.queue as usize,
        out: args.out.clone(),
    };
    mammo_serve::run_server(args.bind, engine, config, |addr| {
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
    })?;
    eprintln!("stopped");
    Ok(Outcome::Ok)
}
