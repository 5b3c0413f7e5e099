//! Emits a record and opens a read from `describe`, where neither is allowed: the host
//! must refuse to load it rather than let records or rows cross before the export.

use ferry_pdk::bindings::ferry::plugin::types::{Error, ExportRequest, ExportSummary, FieldColumn, ResourceInfo, TableGrant};
use ferry_pdk::bindings::ferry::plugin::{records, source};
use ferry_pdk::{Describe, Type};

struct Rude;

impl ferry_pdk::bindings::Guest for Rude {
    fn describe() -> ResourceInfo {
        let req = source::TableRequest { table: "users".into(), columns: vec!["guid".into()], range: None, order_by: None };
        let _ = source::open(&req);
        let _ = records::emit(1, &[6, b'e', b'a', b'r', b'l', b'y', b'!']);
        let d = Describe::new("rude", "0.0.1").table("users").field("guid", Type::String);
        ResourceInfo {
            name: "rude".into(),
            version: "0.0.1".into(),
            description: "misbehaves in describe".into(),
            schema: d.avro_schema(),
            tables: vec![TableGrant { table: "users".into(), columns: vec!["guid".into()] }],
            window_column: None,
            main_table: "users".into(),
            created_column: None,
            key: None,
            references: Vec::new(),
            copied: vec![FieldColumn { field: "guid".into(), column: "guid".into() }],
        }
    }

    fn export(_: ExportRequest) -> Result<ExportSummary, Error> {
        Ok(ExportSummary { records: 0 })
    }
}

ferry_pdk::bindings::__export_world!(Rude with_types_in ferry_pdk::bindings);
