//! `soxara`: the gateway's command line.

use std::io::Write;
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
    /// Operate a running gateway (plugins, merchant accounts, keys) through its admin API.
    Admin {
        /// The admin API's address.
        #[arg(long, env = "SOXARA_ADMIN_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
        /// A file holding the admin token; else `SOXARA_ADMIN_TOKEN`. Never
        /// the token itself on the command line, where `ps` shows it.
        #[arg(long, env = "SOXARA_ADMIN_TOKEN_FILE")]
        token_file: Option<PathBuf>,
        /// The certificate (PEM) to trust for an admin API served over TLS
        /// with one that the system does not trust.
        #[arg(long, env = "SOXARA_ADMIN_CA_FILE")]
        ca_file: Option<PathBuf>,
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Print the API's OpenAPI 3.1 document (what `GET /openapi.json` serves
    /// and docs/openapi.json holds).
    Openapi,
    /// Check every ledger invariant in a database; exit 1 on the first violation.
    Verify {
        #[arg(long, env = "SOXARA_DATABASE", default_value = "data/soxara.db")]
        database: PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// List loaded rail and biller versions.
    Plugins,
    /// List bindings.
    Routes,
    /// Load a rail or biller component (compiled and checked before it is added).
    Load { path: PathBuf },
    /// Bind a rail (name or name@version) to a mode and method, atomically.
    Bind {
        #[arg(long)]
        mode: String,
        #[arg(long)]
        method: String,
        #[arg(long)]
        plugin: String,
        /// A second rail that takes `--percent` of the calls.
        #[arg(long, requires = "percent")]
        canary: Option<String>,
        #[arg(long, requires = "canary", value_parser = clap::value_parser!(u8).range(0..=100))]
        percent: Option<u8>,
    },
    /// Restore the binding in place before the last change.
    Rollback {
        #[arg(long)]
        mode: String,
        #[arg(long)]
        method: String,
    },
    /// Forget a rail or biller version nothing is bound to.
    Unload { id: String },
    /// List biller bindings.
    BillRoutes,
    /// Bind a biller (name or name@version) to a mode and bill type, atomically.
    BillBind {
        #[arg(long)]
        mode: String,
        /// airtime, data, electricity, cable, education, epin or bet.
        #[arg(long)]
        bill_type: String,
        #[arg(long)]
        plugin: String,
        /// A second biller that takes `--percent` of the purchases.
        #[arg(long, requires = "percent")]
        canary: Option<String>,
        #[arg(long, requires = "canary", value_parser = clap::value_parser!(u8).range(0..=100))]
        percent: Option<u8>,
    },
    /// Restore the biller binding in place before the last change.
    BillRollback {
        #[arg(long)]
        mode: String,
        #[arg(long)]
        bill_type: String,
    },
    /// List gift card sales across merchants, oldest first (the review queue).
    GiftCards {
        /// pending, completed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// 1–100 (default 10).
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        starting_after: Option<String>,
    },
    /// Approve a pending gift card sale at the face value verified (minor
    /// units, at most the declared value): the merchant is credited once.
    GiftCardApprove {
        id: String,
        #[arg(long)]
        verified_value: u64,
        /// Who verified it (recorded).
        #[arg(long)]
        reviewer: String,
    },
    /// Reject a pending gift card sale: nothing is credited.
    GiftCardReject {
        id: String,
        /// Why, shown to the merchant.
        #[arg(long)]
        reason: String,
        /// Who decided it (recorded).
        #[arg(long)]
        reviewer: String,
    },
    /// List bill purchases across merchants, newest first.
    Bills {
        #[arg(long)]
        merchant_id: Option<String>,
        #[arg(long)]
        mode: Option<String>,
        /// processing, completed, failed or refunded.
        #[arg(long)]
        status: Option<String>,
        /// The biller plugin that carried them.
        #[arg(long)]
        biller: Option<String>,
        /// 1–100 (default 10).
        #[arg(long)]
        limit: Option<u16>,
        /// The last id of the previous page.
        #[arg(long)]
        starting_after: Option<String>,
    },
    /// Create a merchant account.
    MerchantCreate {
        #[arg(long)]
        name: String,
        /// 0–3; sandbox keys need 2, live keys 3.
        #[arg(long)]
        kyc_tier: Option<u8>,
        /// none, pending, approved or rejected; live keys need approved.
        #[arg(long)]
        kyb_status: Option<String>,
    },
    /// List merchant accounts, newest first (100 a page).
    Merchants {
        /// The last id of the previous page.
        #[arg(long)]
        starting_after: Option<String>,
    },
    /// Show a merchant account, its key pairs and payout accounts.
    Merchant { id: String },
    /// Change a merchant account.
    MerchantSet {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        kyc_tier: Option<u8>,
        #[arg(long)]
        kyb_status: Option<String>,
        /// active, suspended or deactivated.
        #[arg(long)]
        status: Option<String>,
    },
    /// Make a key pair (secret and public key, printed once).
    KeyCreate {
        merchant: String,
        #[arg(long)]
        mode: String,
        /// A scope the keys get (repeat it); none given: every scope.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An address or CIDR block the keys may be used from (repeat it);
        /// none given: any address.
        #[arg(long = "allow-ip")]
        allow_ips: Vec<String>,
    },
    /// Replace a key pair's keys; the old ones stop at once.
    KeyRotate { pair: String },
    /// Revoke a key pair.
    KeyRevoke { pair: String },
    /// Set where settlements pay a merchant in one mode and currency.
    PayoutAccountSet {
        merchant: String,
        #[arg(long)]
        mode: String,
        #[arg(long)]
        currency: String,
        /// The payment method whose bound rail pays out, e.g. mtn_momo.
        #[arg(long)]
        method: String,
        /// Where to (an E.164 phone).
        #[arg(long)]
        destination: String,
    },
    /// Run a settlement batch now (it also runs every `[settlement] interval_ms`).
    Settle,
}

/// A JSON object of the options that were given.
fn given(pairs: &[(&str, Option<serde_json::Value>)]) -> serde_json::Value {
    pairs.iter().filter_map(|(name, value)| Some((name.to_string(), value.clone()?))).collect()
}

/// `?name=value&…` of the parameters given, percent-encoded; empty if none.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let given: Vec<String> =
        pairs.iter().filter_map(|(name, value)| Some(format!("{name}={}", encode((*value)?)))).collect();
    if given.is_empty() { String::new() } else { format!("?{}", given.join("&")) }
}

/// The admin token, from `--token-file` or `SOXARA_ADMIN_TOKEN`.
fn admin_token(token_file: Option<&std::path::Path>) -> Result<String> {
    let token = match token_file {
        Some(file) => {
            std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?
        }
        None => std::env::var("SOXARA_ADMIN_TOKEN").map_err(|_| {
            anyhow::anyhow!(
                "no admin token: set SOXARA_ADMIN_TOKEN (e.g. export SOXARA_ADMIN_TOKEN=$(cat data/soxara.admin.token)) \
                 or pass --token-file"
            )
        })?,
    };
    Ok(token.trim().to_string())
}

/// An agent that trusts `ca_file` if given, else the platform's roots.
fn admin_agent(ca_file: Option<&std::path::Path>) -> Result<ureq::Agent> {
    let mut config = ureq::Agent::config_builder().http_status_as_error(false);
    if let Some(file) = ca_file {
        let pem = std::fs::read(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        let cert = ureq::tls::Certificate::from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", file.display()))?
            .to_owned();
        let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![cert]));
        config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    Ok(config.build().into())
}

/// Sends one admin request and prints the JSON answer; fails on a non-2xx.
fn admin(url: &str, token: &str, agent: &ureq::Agent, action: AdminAction) -> Result<()> {
    let (method, path, body) = match action {
        AdminAction::Plugins => ("GET", "/admin/plugins".to_string(), None),
        AdminAction::Routes => ("GET", "/admin/routes".to_string(), None),
        AdminAction::Load { path } => {
            let path = std::fs::canonicalize(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            ("POST", "/admin/plugins".to_string(), Some(serde_json::json!({ "path": path })))
        }
        AdminAction::Bind { mode, method, plugin, canary, percent } => {
            let mut body = serde_json::json!({ "mode": mode, "method": method, "plugin": plugin });
            if let Some(canary) = canary {
                body["canary"] = serde_json::json!({ "plugin": canary, "percent": percent.unwrap_or(0) });
            }
            ("POST", "/admin/routes".to_string(), Some(body))
        }
        AdminAction::Rollback { mode, method } => {
            ("POST", "/admin/routes/rollback".to_string(), Some(serde_json::json!({ "mode": mode, "method": method })))
        }
        AdminAction::Unload { id } => ("DELETE", format!("/admin/plugins/{id}"), None),
        AdminAction::BillRoutes => ("GET", "/admin/bills/routes".to_string(), None),
        AdminAction::BillBind { mode, bill_type, plugin, canary, percent } => {
            let mut body = serde_json::json!({ "mode": mode, "bill_type": bill_type, "plugin": plugin });
            if let (Some(canary), Some(percent)) = (canary, percent) {
                body["canary"] = serde_json::json!({ "plugin": canary, "percent": percent });
            }
            ("POST", "/admin/bills/routes".to_string(), Some(body))
        }
        AdminAction::BillRollback { mode, bill_type } => (
            "POST",
            "/admin/bills/routes/rollback".to_string(),
            Some(serde_json::json!({ "mode": mode, "bill_type": bill_type })),
        ),
        AdminAction::Bills { merchant_id, mode, status, biller, limit, starting_after } => {
            let limit = limit.map(|n| n.to_string());
            let query = query_string(&[
                ("merchant_id", merchant_id.as_deref()),
                ("mode", mode.as_deref()),
                ("status", status.as_deref()),
                ("biller", biller.as_deref()),
                ("limit", limit.as_deref()),
                ("starting_after", starting_after.as_deref()),
            ]);
            ("GET", format!("/admin/bills{query}"), None)
        }
        AdminAction::GiftCards { status, limit, starting_after } => {
            let limit = limit.map(|n| n.to_string());
            let query = query_string(&[
                ("status", status.as_deref()),
                ("limit", limit.as_deref()),
                ("starting_after", starting_after.as_deref()),
            ]);
            ("GET", format!("/admin/gift-cards{query}"), None)
        }
        AdminAction::GiftCardApprove { id, verified_value, reviewer } => (
            "POST",
            format!("/admin/gift-cards/{id}/approve"),
            Some(serde_json::json!({ "verified_value": verified_value, "reviewer": reviewer })),
        ),
        AdminAction::GiftCardReject { id, reason, reviewer } => (
            "POST",
            format!("/admin/gift-cards/{id}/reject"),
            Some(serde_json::json!({ "reason": reason, "reviewer": reviewer })),
        ),
        AdminAction::MerchantCreate { name, kyc_tier, kyb_status } => {
            let body = given(&[
                ("name", Some(name.into())),
                ("kyc_tier", kyc_tier.map(Into::into)),
                ("kyb_status", kyb_status.map(Into::into)),
            ]);
            ("POST", "/admin/merchants".to_string(), Some(body))
        }
        AdminAction::Merchants { starting_after } => {
            let query = starting_after.map(|id| format!("?starting_after={id}")).unwrap_or_default();
            ("GET", format!("/admin/merchants{query}"), None)
        }
        AdminAction::Merchant { id } => ("GET", format!("/admin/merchants/{id}"), None),
        AdminAction::MerchantSet { id, name, kyc_tier, kyb_status, status } => {
            let body = given(&[
                ("name", name.map(Into::into)),
                ("kyc_tier", kyc_tier.map(Into::into)),
                ("kyb_status", kyb_status.map(Into::into)),
                ("status", status.map(Into::into)),
            ]);
            ("PATCH", format!("/admin/merchants/{id}"), Some(body))
        }
        AdminAction::KeyCreate { merchant, mode, scopes, allow_ips } => {
            let body = given(&[
                ("mode", Some(mode.into())),
                ("scopes", (!scopes.is_empty()).then(|| scopes.into())),
                ("ip_allowlist", (!allow_ips.is_empty()).then(|| allow_ips.into())),
            ]);
            ("POST", format!("/admin/merchants/{merchant}/keys"), Some(body))
        }
        AdminAction::KeyRotate { pair } => ("POST", format!("/admin/keys/{pair}/rotate"), None),
        AdminAction::KeyRevoke { pair } => ("DELETE", format!("/admin/keys/{pair}"), None),
        AdminAction::PayoutAccountSet { merchant, mode, currency, method, destination } => {
            let body =
                serde_json::json!({ "mode": mode, "currency": currency, "method": method, "destination": destination });
            ("PUT", format!("/admin/merchants/{merchant}/payout_accounts"), Some(body))
        }
        AdminAction::Settle => ("POST", "/admin/settlements/run".to_string(), None),
    };
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", url.trim_end_matches('/')))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map(|b| b.to_string()).unwrap_or_default())?;
    let response = agent.run(request).map_err(|e| anyhow::anyhow!("calling {url}: {e}"))?;
    let status = response.status();
    let text = response.into_body().read_to_string().unwrap_or_default();
    let pretty = serde_json::from_str::<serde_json::Value>(&text)
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or(text.clone()))
        .unwrap_or(text);
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout(), "{pretty}");
    anyhow::ensure!(status.is_success(), "the admin API answered {status}");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Admin { url, token_file, ca_file, action } => {
            let token = admin_token(token_file.as_deref())?;
            let agent = admin_agent(ca_file.as_deref())?;
            tokio::task::spawn_blocking(move || admin(&url, &token, &agent, action)).await??;
        }
        Command::Openapi => {
            print!("{}", soxara::http::openapi::json());
        }
        Command::Verify { database } => {
            let conn = soxara::store::open_read_only(&database)
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", database.display()))?;
            match soxara::operations::verify(&conn) {
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
            let mut file = match config {
                Some(path) => soxara::config::FileConfig::load(&path)?,
                None => soxara::config::FileConfig::default(),
            };
            if let Ok(token) = std::env::var("SOXARA_ADMIN_TOKEN") {
                file.admin.token = Some(token.trim().to_string());
            }
            if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let clock = soxara::values::clock::Clock::system();
            let app = soxara::app::start(soxara::app::Config { database, listen, plugin_dir, file, clock }).await?;
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
            let scheme = if app.admin_tls { "https" } else { "http" };
            match &app.admin_token_file {
                Some(file) => println!(
                    "Admin API on {scheme}://{}; its token is in {} (export SOXARA_ADMIN_TOKEN=$(cat {}))",
                    app.admin_addr,
                    file.display(),
                    file.display()
                ),
                None => println!(
                    "Admin API on {scheme}://{} (token from the config file or SOXARA_ADMIN_TOKEN)",
                    app.admin_addr
                ),
            }
            tokio::signal::ctrl_c().await?;
            println!("stopping: finishing requests in flight");
            app.stop().await?;
        }
    }
    Ok(())
}
