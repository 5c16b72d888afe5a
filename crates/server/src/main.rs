//! The `switchboard` binary: parse the command line, set up logs, bind, and run.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use switchboard::cli::{Cli, Command};
use switchboard::{commands, shutdown, Server, Settings};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(Settings::from_args(args)?).await,
        Command::Token(args) => {
            println!("{}", commands::token(args).await?);
            Ok(())
        }
        Command::Check(args) => commands::check(args),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    init_logs(settings.json_logs);
    let server = Server::build(settings.clone()).await?;
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .with_context(|| format!("cannot listen on {} (choose another with --bind)", settings.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, node = %settings.node_id, apps = server.hub().apps().len(), "listening");
    if let Some(demo) = server.demo() {
        demo.print_banner(&format!("http://{addr}"), &commands::demo_token(demo)?);
    }
    server.run(listener, shutdown::signal()).await
}

fn init_logs(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
