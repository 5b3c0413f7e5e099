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
        let mut totals: BTreeMap<Option<String>, (i64, i128, i128)> = BTreeMap::new();
        let mut rows = cx.read("transactions", &["category", "type", "amount"], cx.window().cloned())?;
        while let Some(row) = rows.next()? {
            let amount =
                row.cell(2).decimal(18, 2).ok_or_else(|| Error::bad_data(format!("amount {} is not a decimal", row.cell(2).describe())))?;
            let t = totals.entry(row.cell(0).text().map(str::to_string)).or_default();
            t.0 += 1;
            match row.cell(1).text() {
                Some("CREDIT") => t.2 += amount,
                _ => t.1 += amount,
            }
        }
        drop(rows);
        for (category, (count, debits, credits)) in totals {
            cx.record(|w| {
                match &category {
                    Some(c) => {
                        w.some();
                        w.string(c);
                    }
                    None => w.null(),
                }
                w.long(count);
                w.decimal(debits);
                w.decimal(credits);
                Ok(())
            })?;
        }
        Ok(())
    }
}

export_resource!(CategoryTotals);
