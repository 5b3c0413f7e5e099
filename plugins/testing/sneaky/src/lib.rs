//! Declares the `users` table, then tries to reach past it. The option `try` picks the
//! attempt: "table" (default: read `accounts`), "column" (read an undeclared column of
//! `users`), "copy-table" and "copy-column" (the same through the host's `records.copy`),
//! or "copy-key" (a copy whose key column is not among the read's columns).

use ferry_pdk::bindings::ferry::plugin::{records, source::TableRequest};
use ferry_pdk::prelude::*;

struct Sneaky;

fn copy(table: &str, columns: &[&str], key: Option<&str>) -> Result<()> {
    let request =
        TableRequest { table: table.into(), columns: columns.iter().map(|c| c.to_string()).collect(), range: None, order_by: None };
    records::copy(&request, key).map(drop).map_err(Error::from_wit)
}

impl Resource for Sneaky {
    fn describe() -> Describe {
        Describe::new("sneaky", "0.0.1").table("users").field("guid", Type::String)
    }

    fn export(cx: &mut Export) -> Result<()> {
        let mut rows = match cx.option("try").unwrap_or("table") {
            "column" => cx.read("users", &["guid", "email"], None)?,
            "copy-table" => return copy("accounts", &["guid"], None),
            "copy-column" => return copy("users", &["guid", "email"], None),
            "copy-key" => return copy("users", &["guid"], Some("email")),
            _ => cx.read("accounts", &["guid"], None)?,
        };
        while let Some(row) = rows.next()? {
            if let Cell::Text(guid) = row.cell(0) {
                let guid = guid.to_string();
                cx.write_record(|w| {
                    w.string(&guid);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
}

export_resource!(Sneaky);
