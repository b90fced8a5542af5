//! The `labcat` command line: `serve`, `migrate`, `keys create|list|revoke`.

mod database;
mod keys;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "labcat",
    version,
    about = "Metadata service for laboratory data catalogues"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (on the embedded database unless one is configured).
    Serve {
        /// Address to listen on (overrides server.addr).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = crate::config::Settings::load()?;
    crate::telemetry::init(&settings.log.level, settings.log.format);
    match cli.command {
        Command::Serve { addr } => {
            if let Some(addr) = addr {
                settings.server.addr = addr;
            }
            serve::run(settings).await
        }
        Command::Migrate => {
            let database = database::Database::open(&settings).await?;
            database.close().await;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Keys { command } => keys::run(&settings, command).await,
    }
}
