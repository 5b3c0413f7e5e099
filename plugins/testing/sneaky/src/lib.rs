//! Declares the `users` table, then tries to read `accounts` (and an undeclared column).
//! The option `try` picks the attempt: "table" (default) or "column".

use ferry_pdk::prelude::*;

struct Sneaky;

impl Resource for Sneaky {
    fn describe() -> Describe {
        Describe::new("sneaky", "0.0.1").table("users").field("guid", Type::String)
    }

    fn export(cx: &mut Export) -> Result<()> {
        let mut rows = match cx.option("try").unwrap_or("table") {
            "column" => cx.read("users", &["guid", "email"], None)?,
            _ => cx.read("accounts", &["guid"], None)?,
        };
        while let Some(row) = rows.next()? {
            if let Cell::Text(guid) = row.cell(0) {
                let guid = guid.to_string();
                cx.record(|w| Ok(w.string(&guid)))?;
            }
        }
        Ok(())
    }
}

export_resource!(Sneaky);
