use anyhow::Result;

use crate::Outcome;

#[derive(Debug, clap::Subcommand)]
pub enum Bench {}

pub fn run(b: Bench) -> Result<Outcome> {
    match b {}
}
