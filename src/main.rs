use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = labcat::cli::Cli::parse();
    match labcat::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("labcat: {error:#}");
            ExitCode::FAILURE
        }
    }
}
