//! `category_totals`: per transaction category, how many transactions and how much was
//! debited and credited within the job's month window. Not a table copy: the plugin
//! reads rows and computes its records, which is what most outside plugins do.

use std::collections::BTreeMap;

use ferry_pdk::prelude::*;

const MONEY: Type = Type::Decimal { precision: 18, scale: 2 };

struct CategoryTotals;

impl Resource for CategoryTotals {
    fn describe() -> Describe {
        Describe::new("category_totals", env!("CARGO_PKG_VERSION"))
            .about("transactions, debits and credits per category within the window")
            .table("transactions")
            .window("transacted_at")
            .reads("transactions", &["category", "type", "amount"])
            .computed("category", Type::String.or_null())
            .computed("transactions", Type::Long)
            .computed("debits", MONEY)
            .computed("credits", MONEY)
    }

    fn export(cx: &mut Export) -> Result<()> {
        let mut totals: BTreeMap<Option<String>, (i64, Decimal, Decimal)> = BTreeMap::new();
        let mut rows = cx.read("transactions", &["category", "type", "amount"], cx.window().cloned())?;
        while let Some(row) = rows.next()? {
            let amount: Decimal = row.get("amount")?;
            let t = totals.entry(row.get("category")?).or_default();
            t.0 += 1;
            match row.get("type")? {
                "CREDIT" => t.2 += amount,
                _ => t.1 += amount,
            }
        }
        drop(rows);
        for (category, (count, debits, credits)) in &totals {
            cx.emit(cx.record().set("category", category).set("transactions", *count).set("debits", *debits).set("credits", *credits))?;
        }
        Ok(())
    }
}

export_resource!(CategoryTotals);

#[cfg(test)]
mod tests {
    use ferry_pdk::mock::{MockHost, row};

    use super::CategoryTotals;

    #[test]
    fn sums_debits_and_credits_per_category_within_the_window() {
        let out = MockHost::new()
            .table(
                "transactions",
                &["category", "type", "amount", "transacted_at"],
                [
                    row!["food", "DEBIT", "12.30", 10],
                    row!["food", "CREDIT", "2.05", 11],
                    row!["food", "DEBIT", 3, 12],
                    row![None::<&str>, "DEBIT", "1.5", 13],
                    row!["rent", "DEBIT", "900.00", 99],
                ],
            )
            .window("transacted_at", Some(10), Some(20))
            .export::<CategoryTotals>()
            .unwrap();
        let got: Vec<String> =
            out.records.iter().map(|r| format!("{} {} {} {}", r["category"], r["transactions"], r["debits"], r["credits"])).collect();
        assert_eq!(got, ["null 1 1.50 0.00", "food 3 15.30 2.05"]);
    }

    #[test]
    fn an_amount_that_is_not_a_decimal_names_the_table_row_and_column() {
        let err = MockHost::new()
            .table("transactions", &["category", "type", "amount", "transacted_at"], [row!["food", "DEBIT", "12,30", 1]])
            .export::<CategoryTotals>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("table `transactions`, row 1, column `amount`: text \"12,30\" is not a decimal"), "{err}");
    }
}
