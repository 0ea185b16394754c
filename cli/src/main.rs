//! `kiln`: the command-line client of the Kiln API. See `kiln --help` and the README's
//! "kiln CLI" section.

mod api;
mod args;
mod commands;
mod config;
mod error;
mod output;
mod progress;
mod watch;

use clap::Parser;

use crate::api::Api;
use crate::args::{Cli, Command, ConfigCommand};
use crate::commands::Ctx;
use crate::error::CliError;
use crate::progress::Mode;

fn main() {
    // A usage error prints clap's message and exits 2.
    let cli = Cli::parse();
    watch::install_interrupt_handler();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("cannot start: {e}")))
        .and_then(|rt| rt.block_on(run(cli)));
    if let Err(e) = result {
        eprintln!("kiln: {e}");
        std::process::exit(e.exit_code());
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let env = |name: &str| std::env::var(name).ok();
    let path = config::config_path(&env);
    if let Command::Config(ConfigCommand::Set { name, value }) = &cli.command {
        // Works even when the file in place cannot be used as it is.
        return commands::config_set(path.as_deref(), name, value, cli.json);
    }
    let file = match &path {
        Some(path) => config::load_file(path)?,
        None => None,
    };
    let config = config::resolve(
        cli.base_url.as_deref(),
        cli.api_key.as_deref(),
        &env,
        file.as_ref(),
    );
    if let Command::Config(ConfigCommand::Show) = &cli.command {
        return commands::config_show(&config, path.as_deref(), cli.json);
    }
    let ctx = Ctx {
        api: Api::new(&config)?,
        json: cli.json,
        progress: Mode::detect(cli.quiet),
    };
    commands::run(&ctx, cli.command).await
}
