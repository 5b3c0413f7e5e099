//! A plugin as a component built before 0.2.0 is: against `wit/v0.1.0/ferry.wit`, with no
//! kit. It exports `users` (guid, email) through `records.copy`, whose 0.1.0 rule fills
//! field i from column i. The host must load it and export its records.

#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ world: "resource-plugin", path: "../../../wit/v0.1.0" });
}

use bindings::ferry::plugin::records;
use bindings::ferry::plugin::source::TableRequest;
use bindings::ferry::plugin::types::{Error, ExportRequest, ExportSummary, ResourceInfo, TableGrant};

struct Legacy;

const SCHEMA: &str = r#"{"type":"record","name":"legacy_users","fields":[{"name":"guid","type":"string"},{"name":"email","type":["null","string"],"default":null}]}"#;

impl bindings::Guest for Legacy {
    fn describe() -> ResourceInfo {
        ResourceInfo {
            name: "legacy_users".into(),
            version: "0.1.0".into(),
            description: "users' guid and email, through ferry:plugin@0.1.0".into(),
            schema: SCHEMA.into(),
            tables: vec![TableGrant { table: "users".into(), columns: vec!["guid".into(), "email".into()] }],
            window_column: None,
        }
    }

    fn export(_: ExportRequest) -> Result<ExportSummary, Error> {
        let request = TableRequest { table: "users".into(), columns: vec!["guid".into(), "email".into()], range: None, order_by: None };
        let records = records::copy(&request, Some("guid"))?;
        Ok(ExportSummary { records })
    }
}

bindings::export!(Legacy with_types_in bindings);
