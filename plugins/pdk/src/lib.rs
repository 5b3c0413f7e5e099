//! The ferry plugin kit.
//!
//! A resource plugin is a type implementing [`Resource`] plus one [`export_resource!`] line:
//!
//! ```ignore
//! use ferry_pdk::prelude::*;
//!
//! struct Users;
//!
//! impl Resource for Users {
//!     fn describe() -> Describe {
//!         Describe::new("users", env!("CARGO_PKG_VERSION"))
//!             .about("platform users, one record per user")
//!             .table("users")
//!             .field("guid", Type::String)
//!             .field("email", Type::String.or_null())
//!             .field("created_at", Type::TimestampMicros)
//!     }
//!
//!     fn export(cx: &mut Export) -> Result<()> {
//!         cx.copy_table()
//!     }
//! }
//!
//! export_resource!(Users);
//! ```
//!
//! The kit owns the WIT bindings, the Avro binary encoding of records, the row-batch
//! decoding and batching (records leave the plugin in ~64 KiB batches). `copy_table`
//! hands the whole copy to the host (`records.copy`), which converts each column into
//! its field and names the row, column and field of a value that does not fit.
//!
//! A plugin that computes its records reads cells by column name as Rust types and
//! builds records by field name:
//!
//! ```ignore
//! let mut rows = cx.read("transactions", &["category", "amount"], cx.window().cloned())?;
//! while let Some(row) = rows.next()? {
//!     let amount: Decimal = row.get("amount")?; // bad-data naming table, row and column
//!     let category: Option<&str> = row.get("category")?;
//!     // ...
//! }
//! cx.emit(cx.record().set("category", category).set("debits", debits))?;
//! ```
//!
//! With the `mock` feature, `mock::MockHost` runs a plugin's export natively in
//! `cargo test`, against tables written in the test.

#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated: `records.copy` flattens a table-request
pub mod bindings {
    wit_bindgen::generate!({
        world: "resource-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::ferry_pdk::bindings",
    });
}

mod avro;
pub mod blobs;
mod describe;
mod error;
mod export;
mod host;
#[cfg(feature = "mock")]
pub mod mock;
mod record;
mod rows;
mod values;

pub use avro::RecordWriter;
pub use describe::{Describe, Field, Nullable, Type};
pub use error::{Error, Result};
pub use export::{Export, Range};
pub use record::{Record, Value};
pub use rows::{Cell, Row, Rows};
pub use values::{Decimal, FromCell, MAX_PRECISION, ParseDecimalError};

/// What a plugin author implements: the resource's shape and how to export it.
pub trait Resource {
    /// The resource's name, version, source tables and record fields.
    fn describe() -> Describe;
    /// Emits every record; most resources call [`Export::copy_table`].
    fn export(cx: &mut Export) -> Result<()>;
}

/// Everything a plugin needs, in one import.
pub mod prelude {
    pub use crate::{Cell, Decimal, Describe, Error, Export, Range, RecordWriter, Resource, Result, Row, Type, export_resource};
}

/// Makes `$ty` (a [`Resource`]) the component's export.
#[macro_export]
macro_rules! export_resource {
    ($ty:ty) => {
        type __FerryPlugin = $crate::Plugin<$ty>;
        $crate::bindings::__export_world!(__FerryPlugin with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub struct Plugin<R>(core::marker::PhantomData<R>);

impl<R: Resource> bindings::Guest for Plugin<R> {
    fn describe() -> bindings::ferry::plugin::types::ResourceInfo {
        R::describe().to_wit()
    }

    fn export(
        request: bindings::ferry::plugin::types::ExportRequest,
    ) -> core::result::Result<bindings::ferry::plugin::types::ExportSummary, bindings::ferry::plugin::types::Error> {
        let records = run::<R>(request).map_err(Error::into_wit)?;
        Ok(bindings::ferry::plugin::types::ExportSummary { records })
    }
}

/// One export of `R`: what the component's `export` does, and what the mock host runs.
pub(crate) fn run<R: Resource>(request: bindings::ferry::plugin::types::ExportRequest) -> Result<u64> {
    let describe = R::describe();
    let mut cx = Export::new(&describe, request);
    R::export(&mut cx)?;
    cx.finish()
}
