//! vcctl: the command-line client of vcds (`vcctl --help`).

mod cli;
mod client;
mod commands;
mod descriptor;
mod error;
mod output;
mod ssh;
mod tls;
mod view;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::Cli;
use crate::client::Client;
use crate::error::{exit, Error};
use crate::output::Mode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are answers; anything else is a usage error.
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mode = match (cli.xml, cli.json) {
        (true, _) => Mode::Xml,
        (_, true) => Mode::Json,
        _ => Mode::Text,
    };
    let outcome = connect(&cli, mode).and_then(|c| commands::run(cli.command, &c, mode));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("vcctl: {e}");
            if mode == Mode::Json {
                output::print_json(&e.to_json());
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn connect(cli: &Cli, mode: Mode) -> Result<Client, Error> {
    let url = cli.url.as_deref().ok_or_else(|| {
        Error::Usage("which vcds? give --url http://HOST:PORT or set VCDS_URL".to_string())
    })?;
    let tls = tls::Options {
        cert: cli.cert.clone(),
        key: cli.key.clone(),
        ca: cli.ca.clone(),
    };
    if !url.starts_with("https://") {
        if !url.starts_with("http://") {
            return Err(Error::Usage(format!(
                "--url {url}: expected http://HOST:PORT or https://HOST:PORT"
            )));
        }
        if tls.any() {
            return Err(Error::Usage(format!(
                "--cert, --key and --ca are for https:// URLs; {url} is plain HTTP"
            )));
        }
    }
    Ok(Client::new(url, tls.config()?, mode == Mode::Xml))
}
