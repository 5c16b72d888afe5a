//! The `switchboard` binary: parse the command line, set up logs, bind, and run.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use switchboard::cli::{Cli, Command};
use switchboard::{commands, hangup, shutdown, Server, Settings};
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
        Command::Serve(args) => {
            let settings = Settings::from_args(args.clone())?;
            tokio::spawn(hangup::check_on_hangup(args));
            serve(settings).await
        }
        Command::Token(args) => {
            println!("{}", commands::token(args).await?);
            Ok(())
        }
        Command::Check(args) => commands::check(args),
        Command::Epoch(args) => {
            println!("{}", commands::epoch(args).await?);
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    init_logs(settings.json_logs);
    // Bound first: a port in use then fails before anything is created (such as a new store).
    let listener = listen(&settings.bind)
        .await
        .with_context(|| format!("cannot listen on {} (choose another with --bind)", settings.bind))?;
    let server = Server::build(settings.clone()).await?;
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

/// Connections the kernel may hold waiting for accept: a reconnect storm of thousands of
/// clients at once would overflow the default of 128 (Linux caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// Binds `addr` (a host name is looked up; the first address wins).
async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "the address resolves to nothing"))?;
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
