//! `minipay up | demo | status`: run, try and inspect the whole stack locally.

use std::process::ExitCode;

use clap::Parser;
use minipay::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    cli::run(Cli::parse()).await
}
