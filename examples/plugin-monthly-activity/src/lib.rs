//! `monthly_activity`: per account and calendar month (UTC), how many transactions and
//! how much was debited and credited. The Rust twin of `examples/plugin-python-monthly`
//! (same resource and schema), so the two can be compared on the same work.

use std::collections::BTreeMap;

use ferry_pdk::prelude::*;

const MONEY: Type = Type::Decimal { precision: 18, scale: 2 };
const COLUMNS: &[&str] = &["account_guid", "type", "amount", "transacted_at"];

struct MonthlyActivity;

impl Resource for MonthlyActivity {
    fn describe() -> Describe {
        Describe::new("monthly_activity", env!("CARGO_PKG_VERSION"))
            .about("transactions, debits and credits per account and month (UTC)")
            .table("transactions")
            .window("transacted_at")
            .reads("transactions", COLUMNS)
            .computed("account_guid", Type::String)
            .computed("month", Type::String)
            .computed("transactions", Type::Long)
            .computed("debits", MONEY)
            .computed("credits", MONEY)
    }

    fn export(cx: &mut Export) -> Result<()> {
        let mut totals: BTreeMap<(String, String), (i64, Decimal, Decimal)> = BTreeMap::new();
        let mut rows = cx.read("transactions", COLUMNS, cx.window().cloned())?;
        while let Some(row) = rows.next()? {
            let month = month(row.get("transacted_at")?);
            let t = totals.entry((row.get("account_guid")?, month)).or_default();
            t.0 += 1;
            let amount: Decimal = row.get("amount")?;
            match row.get("type")? {
                "CREDIT" => t.2 += amount,
                _ => t.1 += amount,
            }
        }
        drop(rows);
        for ((account, month), (n, debits, credits)) in &totals {
            cx.emit(
                cx.record()
                    .set("account_guid", account)
                    .set("month", month)
                    .set("transactions", *n)
                    .set("debits", *debits)
                    .set("credits", *credits),
            )?;
        }
        cx.info(&format!("{} account-months", totals.len()));
        Ok(())
    }
}

/// `YYYY-MM` of microseconds since the epoch (UTC; Howard Hinnant's `civil_from_days`).
fn month(micros: i64) -> String {
    let z = micros.div_euclid(86_400_000_000) + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}

export_resource!(MonthlyActivity);

#[cfg(test)]
mod tests {
    use ferry_pdk::mock::{MockHost, row};

    use super::{COLUMNS, MonthlyActivity, month};

    #[test]
    fn months_are_utc_calendar_months() {
        assert_eq!(month(0), "1970-01");
        assert_eq!(month(1_774_967_422_000_000), "2026-03");
        assert_eq!(month(-1), "1969-12");
    }

    #[test]
    fn totals_per_account_and_month() {
        let feb: i64 = 1_770_000_000_000_000; // 2026-02-02
        let out = MockHost::new()
            .table(
                "transactions",
                COLUMNS,
                [row!["A", "DEBIT", "1.50", feb], row!["A", "CREDIT", "10", feb], row!["A", "DEBIT", "2.25", feb + 30 * 86_400_000_000]],
            )
            .export::<MonthlyActivity>()
            .unwrap();
        let got: Vec<String> = out
            .records
            .iter()
            .map(|r| format!("{} {} {} {} {}", r["account_guid"], r["month"], r["transactions"], r["debits"], r["credits"]))
            .collect();
        assert_eq!(got, ["A 2026-02 2 1.50 10.00", "A 2026-03 1 2.25 0.00"]);
    }
}
