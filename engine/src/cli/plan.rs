//! `ferry plan JOB`: rows, size, parts, time and cost before running.

use anyhow::Result;

use ferry::plan::{Basis, DEFAULT_BYTES_PER_RECORD, DEFAULT_RECORDS_PER_SECOND, Plan, human_duration};

use super::{count, printable, size};

pub fn print(plan: &Plan, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(plan)?);
        return Ok(());
    }
    println!("plan for `{}` as of {} into {}", printable(&plan.name), plan.as_of, plan.output_dir.display());
    println!("{:<22} {:<22} {:>12} {:>11} {:>6} {:>10}  window", "resource", "plugin", "rows", "est. size", "files", "est. time");
    for r in &plan.resources {
        println!(
            "{:<22} {:<22} {:>12} {:>11} {:>6} {:>10}  {}",
            r.name,
            r.plugin,
            count(r.rows),
            size(r.estimated_bytes),
            r.files,
            human_duration(r.estimated_seconds),
            r.window.as_deref().unwrap_or("-")
        );
    }
    println!(
        "{:<22} {:<22} {:>12} {:>11} {:>6} {:>10}",
        "total",
        "",
        count(plan.rows),
        size(plan.estimated_bytes),
        plan.resources.iter().map(|r| r.files).sum::<u64>(),
        human_duration(plan.estimated_seconds)
    );
    if let Some(parts) = plan.parts {
        println!("packed into about {parts} tar part(s)");
    }
    match &plan.cost {
        Some(c) => println!(
            "storage cost: {} per month at {} per GiB-month; {} for the {}-day retention",
            money(c.per_month),
            money(c.price_per_gib_month),
            money(c.retention),
            plan.retention_days
        ),
        None => println!("no storage cost: set `[output] price_per_gib` in the job to see one"),
    }
    let history: Vec<_> = plan
        .resources
        .iter()
        .filter_map(|r| match &r.basis {
            Basis::History { snapshot_id } => Some(format!("{} (snapshot {snapshot_id})", r.name)),
            Basis::Default => None,
        })
        .collect();
    if history.len() < plan.resources.len() {
        println!(
            "estimates without history use {DEFAULT_BYTES_PER_RECORD} bytes and 1/{DEFAULT_RECORDS_PER_SECOND} s per record; a completed run in this output root refines them"
        );
    }
    if !history.is_empty() {
        println!("estimates measured by past runs: {}", history.join(", "));
    }
    Ok(())
}

/// Money with enough decimals that a small snapshot does not show as 0.00.
fn money(x: f64) -> String {
    if x >= 1.0 || x == 0.0 { format!("{x:.2}") } else { format!("{x:.6}") }
}
