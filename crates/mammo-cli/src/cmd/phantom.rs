use anyhow::Result;

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_a: Args) -> Result<Outcome> {
    anyhow::bail!("phantom: wired in once mammo-phantom lands")
}
