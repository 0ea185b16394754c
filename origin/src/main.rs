//! `kiln-origin`: reads its settings, binds, prints where it listens, serves until
//! SIGTERM or Ctrl-C. Everything else lives in the library.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use kiln_origin::config::Config;
use kiln_origin::startup::Application;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only help a person at a terminal; they garble log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kiln-origin: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = config.addr;
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("kiln-origin: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Harnesses that bind port 0 read the real address from this line.
    println!("kiln-origin listening on http://{}", app.local_addr());
    let _ = std::io::stdout().flush();

    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
