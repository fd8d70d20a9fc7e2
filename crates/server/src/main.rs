//! `switchyard`: the server and its command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchyard_server::boot;
use switchyard_server::cli::{self, ConnectionsCommand, DeliveriesCommand, Output, SourcesCommand};
use switchyard_server::config::{DeliveryConfig, ServeConfig, StoreConfig};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Self-hosted customer-data router"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the tracking API, bundles, admin API and demo.
    Serve(ServeConfig),
    /// Search the destination catalog.
    Catalog {
        /// Words to look for in names, descriptions and categories.
        query: Option<String>,
        /// Only this category, e.g. "Email Marketing".
        #[arg(long)]
        category: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage sources.
    Sources {
        #[command(subcommand)]
        command: SourcesCommand,
        #[command(flatten)]
        store: StoreConfig,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Manage connections between sources and destinations.
    Connections {
        #[command(subcommand)]
        command: ConnectionsCommand,
        #[command(flatten)]
        store: StoreConfig,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Cloud delivery: status, dead letters, retries, replays, a test event.
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        delivery: DeliveryConfig,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "switchyard=info,tower_http=warn".into()),
        )
        // Colours only for a terminal: a log file or collector gets text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let command = match Cli::try_parse() {
        Ok(cli) => cli.command,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // Usage errors echo what was typed: shown safely, as ours are.
            eprint!("{}", cli::printable(&e.render().to_string(), true));
            std::process::exit(e.exit_code());
        }
    };
    if let Err(e) = run(command).await {
        eprintln!("error: {}", cli::printable(&format!("{e:#}"), false));
        std::process::exit(1);
    }
    Ok(())
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => serve(config).await,
        Command::Catalog {
            query,
            category,
            json,
        } => {
            let catalog = boot::catalog()?;
            cli::catalog(
                &catalog,
                query.as_deref(),
                category.as_deref(),
                &Output { json },
            )
            .await
        }
        Command::Sources {
            command,
            store,
            json,
        } => {
            let state = cli::state(&store).await?;
            cli::sources(&state, command, &Output { json }).await
        }
        Command::Connections {
            command,
            store,
            json,
        } => {
            let state = cli::state(&store).await?;
            cli::connections(&state, command, &Output { json }).await
        }
        Command::Deliveries {
            command,
            store,
            delivery,
            json,
        } => {
            let state = cli::state_with(&store, &delivery).await?;
            cli::deliveries(&state, command, &Output { json }).await
        }
    }
}

/// Prints the start-up message. A closed stdout (a detached terminal, a
/// pipe whose reader left) must not stop the server, so errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let mut opened = boot::open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    let origin = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));

    say!(
        "Switchyard is serving at {origin}  (data: {})",
        config.store.data.display()
    );
    if let Some(problem) = &opened.artifacts_problem {
        say!("warning: {problem}");
    }
    if let Some(token) = &opened.new_admin_token {
        say!("\nAdmin token: {token}\n  (shown once: keep it, or set SWITCHYARD_ADMIN_TOKEN)");
    }
    if let Some(demo) = &opened.demo {
        say!(
            "\nDemo source \"{}\"\n  write key: {}",
            demo.name,
            demo.write_key
        );
        say!(
            "\nSnippet:\n<script>\n{}\n</script>",
            boot::snippet(&demo.write_key, &origin)
        );
    }
    if config.demo {
        say!("\nDemo page: {origin}/demo");
    }
    say!(
        "\nAdmin:     {origin}/admin\nEvents:    curl -H \"Authorization: Bearer <admin token>\" {origin}/api/events"
    );

    // What the settings document and demo page name: never a request's
    // Host, unless it comes through a trusted proxy.
    opened.state.public_url = Some(origin.as_str().into());
    opened.state.delivery.start();
    boot::start_retention(
        opened.state.events.clone(),
        config.retention_days,
        config.retention_mb,
    );
    let app = switchyard_server::app(opened.state);
    let header_timeout = std::time::Duration::from_secs(config.http_timeout.max(1));
    switchyard_server::serve::serve(listener, app, header_timeout, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
