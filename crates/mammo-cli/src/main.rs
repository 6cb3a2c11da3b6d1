//! `mammo`: deep-learning analysis of screening mammograms, from DICOM to report.
//!
//! This binary only parses arguments and calls the library crates. Exit codes: 0 success,
//! 1 failure, 2 bad usage, 3 a batch finished but some items failed (listed in its report).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod cmd;

#[derive(Debug, Parser)]
#[command(
    name = "mammo",
    version,
    about = "Deep-learning analysis of screening mammograms",
    propagate_version = true
)]
struct Cli {
    /// Largest DICOM frame accepted, in values (Rows x Columns x Samples per Pixel); files
    /// whose header claims more are refused before anything is allocated for them.
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value_t = mammo_dicom::DEFAULT_MAX_FRAME_PIXELS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    max_pixels: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render one DICOM image to PNG like a viewer (modality LUT, VOI, MONOCHROME1 inverted).
    Convert(cmd::convert::Args),
    /// Turn an RSNA-layout dataset into cropped, windowed, resized PNGs plus a manifest.
    Preprocess(cmd::preprocess::Args),
    /// Write a synthetic RSNA-layout screening dataset with ground-truth lesions.
    Phantom(cmd::phantom::Args),
    /// Cross-validated training of a classifier on a preprocessed manifest (resumable).
    Train(cmd::train::Args),
    /// Metrics of a training run, or of its fold ensemble on another manifest.
    Eval(cmd::eval::Args),
    /// Cancer probability for single images with a trained run's fold ensemble, or Kaggle's
    /// per-breast submission for an RSNA test set (--rsna-test).
    Predict(cmd::predict::Args),
    /// Heat maps (CAM family) and lesion boxes for a trained run's decisions, with
    /// localisation scores against known lesions.
    Explain(cmd::explain::Args),
    /// The paper's Algorithm 1 end to end (data stages x models x resolutions) with a Table 2
    /// HTML report; on built-in phantom data unless --data is given.
    Experiment(cmd::experiment::Args),
    /// A local viewer and HTTP API for one study: per-breast probability, heat map, box, and
    /// DICOM Secondary Capture and SR results, from a trained run's fold ensemble.
    Serve(cmd::serve::Args),
    /// Synthetic positives: train a StyleGAN-XL-style generator, generate images, FID/KID.
    #[command(subcommand)]
    Gan(cmd::gan::Gan),
    /// Benchmarks against the Python pipelines (printed side by side with ratios).
    #[command(subcommand)]
    Bench(cmd::bench::Bench),
}

/// Outcome of a command that finished without an error.
pub enum Outcome {
    Ok,
    /// Some items of a batch failed; the command has already reported them.
    PartialFailure,
}

/// Every option that takes a value accepts one that starts with '-' and a digit, so that
/// `--lr -1` is refused for its value, not as an unknown flag `-1`.
fn allow_negative_numbers(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| {
        if a.get_action().takes_values() {
            a.allow_negative_numbers(true)
        } else {
            a
        }
    })
    .mut_subcommands(allow_negative_numbers)
}

/// Writing into a closed pipe (`mammo predict ... | head -1`) ends the process quietly with
/// the usual signal status, as other command-line tools do, instead of a panic in `println!`.
fn die_quietly_on_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Freed large blocks (tensors, scratch matrices) are kept for reuse instead of going back to
/// the kernel and faulting in again, zero-filled, at the next step (`mammo_alloc`).
#[global_allocator]
static ALLOC: mammo_alloc::BlockCache = mammo_alloc::BlockCache::new(mammo_alloc::DEFAULT_BUDGET);

fn main() -> ExitCode {
    die_quietly_on_broken_pipe();
    if let Err(e) = ALLOC.budget_from_env() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let parsed = allow_negative_numbers(Cli::command())
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    mammo_dicom::set_max_frame_pixels(cli.max_pixels);
    let result = match cli.command {
        Command::Convert(a) => cmd::convert::run(a),
        Command::Gan(c) => cmd::gan::run(c),
        Command::Preprocess(a) => cmd::preprocess::run(a),
        Command::Phantom(a) => cmd::phantom::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Predict(a) => cmd::predict::run(a),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Experiment(a) => cmd::experiment::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Bench(b) => cmd::bench::run(b),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::PartialFailure) => ExitCode::from(3),
        Err(e) => {
            let mut shown = e.to_string();
            eprintln!("error: {}", cmd::printable(&shown));
            if e.downcast_ref::<cmd::UsageError>().is_some() {
                return ExitCode::from(2);
            }
            // Library messages already hold their cause's text (one line, for failure
            // tables); a link adds a line only when it says something not yet shown.
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !shown.contains(&text) {
                    eprintln!("  caused by: {}", cmd::printable(&text));
                    shown.push('\n');
                    shown.push_str(&text);
                }
            }
            ExitCode::from(1)
        }
    }
}
