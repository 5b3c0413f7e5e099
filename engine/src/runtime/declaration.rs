//! What a 0.2.0 `describe` declares must hang together: the main table is granted, the
//! window and creation columns are its granted columns, the key and references name
//! fields of the schema, and each copied field names a granted column.

use super::ResourceInfo;
use crate::records::RecordSchema;

/// `Err` says what does not fit, naming it.
pub(super) fn check(info: &ResourceInfo, schema: &RecordSchema) -> Result<(), String> {
    let main: Vec<_> = info.tables.iter().filter(|t| t.table == info.main_table).collect();
    if main.is_empty() {
        return Err(format!("main table `{}`, which is not one of its tables", info.main_table));
    }
    let granted = |what: &str, column: &str| {
        if main.iter().any(|t| t.columns.iter().any(|c| c == column)) {
            Ok(())
        } else {
            Err(format!("{what} `{column}`, which is not a declared column of main table `{}`", info.main_table))
        }
    };
    if let Some(c) = &info.window_column {
        granted("window column", c)?;
    }
    if let Some(c) = &info.created_column {
        granted("creation column", c)?;
    }
    let field = |what: &str, name: &str| {
        if schema.fields.iter().any(|(f, _)| f == name) {
            Ok(())
        } else {
            Err(format!("{what} `{name}`, which is not a field of its schema"))
        }
    };
    if let Some(k) = &info.key {
        field("key", k)?;
    }
    for r in &info.references {
        field("a reference from", &r.field)?;
        for name in [&r.resource, &r.key] {
            if crate::source::quote_ident(name).is_err() {
                return Err(format!("a reference to {name:?}; names are letters, digits and _"));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &info.copied {
        field("copied field", &c.field)?;
        granted(&format!("copied field `{}` from column", c.field), &c.column)?;
        if !seen.insert(&c.field) {
            return Err(format!("copied field `{}` twice", c.field));
        }
    }
    Ok(())
}
