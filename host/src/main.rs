//! `soxara`: the gateway's command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "soxara", version, about = "The Soxara payment gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// SQLite database file; created, with a sandbox merchant, if missing.
        #[arg(long, env = "SOXARA_DATABASE", default_value = "data/soxara.db")]
        database: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "SOXARA_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Directory of plugin components to load.
        #[arg(long, env = "SOXARA_PLUGIN_DIR", default_value = "target/plugins")]
        plugin_dir: PathBuf,
        /// Operator settings (TOML); without it, built-in sandbox defaults.
        #[arg(long, env = "SOXARA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check every ledger invariant in a database; exit 1 on the first violation.
    Verify {
        #[arg(long, env = "SOXARA_DATABASE", default_value = "data/soxara.db")]
        database: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Verify { database } => {
            let conn = soxara::store::open_read_only(&database)
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", database.display()))?;
            match soxara::ledger::verify(&conn) {
                Ok(summary) => println!(
                    "ledger ok: {} entries, {} postings, {} accounts; every invariant holds",
                    summary.entries, summary.postings, summary.accounts
                ),
                Err(violation) => {
                    eprintln!("ledger violation: {violation}");
                    std::process::exit(1);
                }
            }
        }
        Command::Serve { database, listen, plugin_dir, config } => {
            let file = match config {
                Some(path) => soxara::config::FileConfig::load(&path)?,
                None => soxara::config::FileConfig::default(),
            };
            if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let app = soxara::app::start(soxara::app::Config { database, listen, plugin_dir, file }).await?;
            let base = format!("http://{}", app.addr);
            if let Some((merchant, key)) = &app.sandbox {
                println!("Created the sandbox merchant {merchant}.");
                println!("Its test secret key is shown only this once; keep it:\n\n    {key}\n");
                println!("Try it:\n\n    curl -s -X POST {base}/v1/payments \\");
                println!(
                    "      -H \"Authorization: Bearer {key}\" -H \"X-Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)\" \\"
                );
                println!(
                    "      -d '{{\"amount\":1250,\"currency\":\"USD\",\"method\":\"mtn_momo\",\"customer\":{{\"phone\":\"+231770001234\"}}}}'\n"
                );
            }
            println!("Soxara gateway listening on {base} (Ctrl-C to stop)");
            tokio::signal::ctrl_c().await?;
            println!("stopping: finishing requests in flight");
            app.stop().await?;
        }
    }
    Ok(())
}
