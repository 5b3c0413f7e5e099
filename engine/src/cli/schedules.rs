//! `ferry schedules list`: the service config's schedules with their next runs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use ferry::catalog::Catalog;
use ferry::service::config::ServiceConfig;
use ferry::service::schedule::clock::{Clock, FixedClock, SystemClock};

#[derive(Args)]
pub struct SchedulesArgs {
    /// The service config: its `[[schedule]]` tables, and its output root's catalog for
    /// each schedule's pause state and last slot.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Each schedule's cadence, next runs, pause state and last slot.
    List {
        #[arg(long)]
        json: bool,
        /// List as of this time (RFC 3339) instead of now.
        #[arg(long, hide = true)]
        at: Option<String>,
    },
}

pub fn schedules(args: SchedulesArgs) -> Result<()> {
    let path = args.config.context("--config is required: the service config whose [[schedule]] tables to list")?;
    let config = ServiceConfig::load(&path)?;
    let Action::List { json, at } = args.action;
    let clock: Arc<dyn Clock> = match at {
        Some(t) => Arc::new(FixedClock(
            chrono::DateTime::parse_from_rfc3339(&t).with_context(|| format!("--at {t:?} is not an RFC 3339 time"))?.to_utc(),
        )),
        None => Arc::new(SystemClock),
    };
    let catalog = Catalog::open(&config.output_dir)?;
    let views = ferry::service::schedule::views(&config.schedules, &catalog, &clock)?;
    super::quiet_on_closed_stdout();
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    if views.is_empty() {
        println!("no schedules in {}; add a [[schedule]] table (see examples/service.toml)", path.display());
        return Ok(());
    }
    for v in views {
        let state = if v.paused { format!("paused by {}", v.paused_by.as_deref().unwrap_or("?")) } else { "active".into() };
        println!("{}  job {}  {}  catch_up {}  {state}", super::printable(&v.name), v.job, v.description, v.catch_up);
        for t in &v.next_runs {
            println!("    next  {t}");
        }
        if let Some(l) = &v.last_slot {
            println!(
                "    last  {}  {}{}",
                l.slot,
                l.outcome,
                l.snapshot_id.as_deref().map(|s| format!("  snapshot {s}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}
