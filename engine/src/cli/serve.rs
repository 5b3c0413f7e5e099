//! `ferry serve` and `ferry tokens`: the snapshot service and its API tokens.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use ferry::catalog::{Catalog, Role};
use ferry::service::config::{ServiceConfig, parse_listen};
use ferry::service::tokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn serve(config: PathBuf, listen: Option<String>, log_format: LogFormat) -> Result<()> {
    let subscriber = tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false);
    match log_format {
        LogFormat::Json => subscriber.json().flatten_event(true).init(),
        LogFormat::Text => subscriber.with_ansi(false).init(),
    }
    let mut config = ServiceConfig::load(&config)?;
    if let Some(l) = listen {
        config.listen = parse_listen(&l).map_err(|m| anyhow::anyhow!("--listen: {m}"))?;
    }
    let jobs = ferry::service::load_jobs(&config, ferry::runtime::default_cache_dir())?;
    let root = config.output_dir.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the server's runtime")?;
    runtime.block_on(ferry::service::serve(config, jobs, move |addr, tls| {
        // Scripts (and the tests) read the address from this line.
        println!("ferry serve listening on {}://{addr} (output root {})", if tls { "https" } else { "http" }, root.display());
        let _ = std::io::stdout().flush();
    }))?;
    Ok(())
}

#[derive(Args)]
pub struct TokensArgs {
    /// The service config: its output root's catalog keeps the tokens (hashed).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Create a token and print it once (only its sha256 is kept).
    Create {
        /// A name for the token's holder, e.g. warehouse.
        #[arg(long)]
        name: String,
        /// admin: everything; reader: list and download only.
        #[arg(long, value_enum, default_value = "admin")]
        role: RoleArg,
    },
    /// List the tokens (names, roles, times; never the tokens).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name: it stops working at once.
    Revoke { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Reader,
}

pub fn tokens(args: TokensArgs) -> Result<()> {
    let path = args.config.context("--config is required: the service config whose output root keeps the tokens")?;
    let config = ServiceConfig::load(&path)?;
    let mut catalog = Catalog::open(&config.output_dir)?;
    match args.action {
        Action::Create { name, role } => {
            anyhow::ensure!(
                !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')),
                "--name {name:?} is not a token name; use 1 to 64 letters, digits, _, - and ."
            );
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Reader => Role::Reader,
            };
            let token = tokens::generate();
            catalog.create_token(&name, role, &tokens::hash(&token))?;
            eprintln!("token {name:?} ({}) created; it is shown only now, keep it secret:", role.as_str());
            println!("{token}");
        }
        Action::List { json } => {
            let all = catalog.tokens()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!("{:<24} {:<7} {:<28} revoked", "name", "role", "created");
                for t in all {
                    println!("{:<24} {:<7} {:<28} {}", t.name, t.role.as_str(), t.created_at, t.revoked_at.as_deref().unwrap_or("-"));
                }
            }
        }
        Action::Revoke { name } => {
            catalog.revoke_token(&name)?;
            println!("token {name:?} revoked");
        }
    }
    Ok(())
}
