//! The `pgqueue` binary: `pgqueue run` is the server; every other command is a client of it.

mod bench;
mod ceiling;
mod cli;
mod commands;
mod direct;
mod error;
mod output;
mod server;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use error::CliError;
use std::process::ExitCode;

fn init_logging(debug: bool, json: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

async fn dispatch(cli: Cli) -> Result<(), CliError> {
    let addr = server::normalise_addr(&cli.http_addr);
    match cli.command {
        Command::Run(args) => {
            init_logging(cli.debug, args.log_format == "json");
            let namespace = match cli.namespace.as_slice() {
                [] => "default",
                [one] => one.as_str(),
                _ => return Err(CliError::Usage("run serves one --namespace".into())),
            };
            server::run(args, &addr, &cli.http_prefix, namespace).await
        }
        Command::Token { command } => direct::tokens(command, &cli.namespace).await,
        Command::Migrate {
            url,
            status,
            pg_schema,
        } => direct::migrate(url, status, pg_schema).await,
        Command::Bench(args) => {
            if cli.debug {
                init_logging(true, false);
            }
            bench::run(args).await
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "pgqueue",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        command => {
            if cli.debug {
                init_logging(true, false);
            }
            let prefix = format!("/{}", cli.http_prefix.trim().trim_matches('/'));
            let base = format!(
                "{}://{addr}{}",
                server::scheme(&cli.http_addr),
                if prefix == "/" { "" } else { prefix.as_str() }
            );
            let mut client = match &cli.ca_cert {
                None => pgqueue_client::Client::new(&base)?,
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        CliError::Usage(format!(
                            "cannot read --http.ca-cert {}: {e}",
                            path.display()
                        ))
                    })?;
                    pgqueue_client::Client::with_ca_cert(&base, &pem)?
                }
            };
            if let Some(token) = cli.token.as_deref().filter(|t| !t.trim().is_empty()) {
                client = client.token(token.trim());
            }
            match cli.namespace.as_slice() {
                [] => {}
                [one] => client = client.namespace(one)?,
                _ => {
                    return Err(CliError::Usage(
                        "client commands act on one --namespace".into(),
                    ));
                }
            }
            output::choose(cli.output.as_deref());
            commands::run(client, command).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: clap prints them to stdout and they are successes.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Usage mistakes are errors like any other: one `Error:` line (clap's usage hint
            // follows it) and exit code 1.
            let rendered = e.render().to_string();
            eprintln!(
                "Error: {}",
                rendered.trim_start_matches("error: ").trim_end()
            );
            return ExitCode::FAILURE;
        }
    };
    match dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
