//! Declaring a resource: its name, source table and record fields.

use crate::bindings::ferry::plugin::types::{FieldColumn, Reference, ResourceInfo, TableGrant};

/// The type of a record field, and how a source value converts into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Avro `string`, from a text value.
    String,
    /// Avro `long`, from an integer value.
    Long,
    /// Avro `int`, from an integer value within 32 bits.
    Int,
    /// Avro `boolean`, from the integers 0 and 1.
    Boolean,
    /// Avro `double`, from a real or integer value. Never for money: use `Decimal`.
    Double,
    /// Avro `long` with logical type `timestamp-micros` (UTC), from integer microseconds.
    TimestampMicros,
    /// Avro `bytes` with logical type `decimal`, from a decimal text (`"-12.30"`) or an integer.
    Decimal { precision: u8, scale: u8 },
}

impl Type {
    /// The type as messages name it: `string`, `decimal(18, 2)`.
    pub fn name(self) -> String {
        match self {
            Type::String => "string".into(),
            Type::Long => "long".into(),
            Type::Int => "int".into(),
            Type::Boolean => "boolean".into(),
            Type::Double => "double".into(),
            Type::TimestampMicros => "timestamp-micros".into(),
            Type::Decimal { precision, scale } => format!("decimal({precision}, {scale})"),
        }
    }

    /// This type, or null (Avro `["null", T]` with default null).
    pub fn or_null(self) -> Nullable {
        Nullable { ty: self, nullable: true }
    }

    fn avro(self) -> String {
        match self {
            Type::String => r#""string""#.into(),
            Type::Long => r#""long""#.into(),
            Type::Int => r#""int""#.into(),
            Type::Boolean => r#""boolean""#.into(),
            Type::Double => r#""double""#.into(),
            Type::TimestampMicros => r#"{"type":"long","logicalType":"timestamp-micros"}"#.into(),
            Type::Decimal { precision, scale } => {
                format!(r#"{{"type":"bytes","logicalType":"decimal","precision":{precision},"scale":{scale}}}"#)
            }
        }
    }
}

/// A field type with its nullability; `Type` converts into a non-null one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nullable {
    pub ty: Type,
    pub nullable: bool,
}

impl From<Type> for Nullable {
    fn from(ty: Type) -> Self {
        Nullable { ty, nullable: false }
    }
}

/// One record field and the source column that feeds it.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub column: String,
    pub ty: Type,
    pub nullable: bool,
}

impl Field {
    /// The field's type as messages name it: `decimal(18, 2)`, `string or null`.
    pub fn type_name(&self) -> String {
        if self.nullable { format!("{} or null", self.ty.name()) } else { self.ty.name() }
    }
}

/// A resource's declaration; see the crate docs for an example.
#[derive(Debug, Clone)]
pub struct Describe {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) about: String,
    pub(crate) table: String,
    pub(crate) key: Option<String>,
    pub(crate) window: Option<String>,
    pub(crate) created: Option<String>,
    pub(crate) references: Vec<Reference>,
    pub(crate) fields: Vec<Field>,
    pub(crate) extra_tables: Vec<(String, Vec<String>)>,
}

impl Describe {
    pub fn new(name: &str, version: &str) -> Self {
        Describe {
            name: name.into(),
            version: version.into(),
            about: String::new(),
            table: name.into(),
            key: None,
            window: None,
            created: None,
            references: Vec::new(),
            fields: Vec::new(),
            extra_tables: Vec::new(),
        }
    }

    /// One line shown by `ferry plugins`.
    pub fn about(mut self, text: &str) -> Self {
        self.about = text.into();
        self
    }

    /// The main source table (default: the resource's name).
    pub fn table(mut self, table: &str) -> Self {
        self.table = table.into();
        self
    }

    /// The field whose value identifies a record (`guid`); its column names a row in
    /// error messages (default: the first field's column). Declare it after the field.
    pub fn key(mut self, field: &str) -> Self {
        self.key = Some(field.into());
        self
    }

    /// The main table's column holding when a row was created (integer microseconds):
    /// the host leaves out rows created at or after the snapshot's as-of time. Without
    /// one the resource is exported whole, and the manifest says so.
    pub fn created(mut self, column: &str) -> Self {
        self.created = Some(column.into());
        self
    }

    /// Field `field` holds a key of resource `resource` (its field `key`):
    /// `.reference("user_guid", "users", "guid")`.
    pub fn reference(mut self, field: &str, resource: &str, key: &str) -> Self {
        self.references.push(Reference { field: field.into(), resource: resource.into(), key: key.into() });
        self
    }

    /// The main table's column a time window applies to.
    pub fn window(mut self, column: &str) -> Self {
        self.window = Some(column.into());
        self
    }

    /// A field fed by the main table's column of the same name.
    pub fn field(self, name: &str, ty: impl Into<Nullable>) -> Self {
        self.field_from(name, name, ty)
    }

    /// A field the plugin computes itself (no source column behind it).
    pub fn computed(mut self, name: &str, ty: impl Into<Nullable>) -> Self {
        let Nullable { ty, nullable } = ty.into();
        self.fields.push(Field { name: name.into(), column: String::new(), ty, nullable });
        self
    }

    /// A field fed by a differently named column of the main table.
    pub fn field_from(mut self, name: &str, column: &str, ty: impl Into<Nullable>) -> Self {
        let Nullable { ty, nullable } = ty.into();
        self.fields.push(Field { name: name.into(), column: column.into(), ty, nullable });
        self
    }

    /// Another table the plugin reads itself, with the columns it may read.
    pub fn reads(mut self, table: &str, columns: &[&str]) -> Self {
        self.extra_tables.push((table.into(), columns.iter().map(|c| c.to_string()).collect()));
        self
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The main source table.
    pub fn main_table(&self) -> &str {
        &self.table
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The main table's columns, one per field, in field order.
    pub(crate) fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = self.fields.iter().filter(|f| !f.column.is_empty()).map(|f| f.column.clone()).collect();
        for extra in self.key_column().into_iter().chain(self.window.as_deref()).chain(self.created.as_deref()) {
            if !cols.iter().any(|c| c == extra) {
                cols.push(extra.to_string());
            }
        }
        cols
    }

    /// The column that names a row in messages: the key field's, else the first field's.
    pub(crate) fn key_column(&self) -> Option<&str> {
        let field = match &self.key {
            Some(key) => self.fields.iter().find(|f| &f.name == key),
            None => self.fields.first(),
        };
        field.map(|f| f.column.as_str()).filter(|c| !c.is_empty())
    }

    /// The Avro schema of one record, as JSON.
    pub fn avro_schema(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| {
                if f.nullable {
                    format!(r#"{{"name":"{}","type":["null",{}],"default":null}}"#, f.name, f.ty.avro())
                } else {
                    format!(r#"{{"name":"{}","type":{}}}"#, f.name, f.ty.avro())
                }
            })
            .collect();
        // An Avro name is letters, digits and `_`: a resource named `my-plugin` makes
        // the record `my_plugin`.
        let record: String = self.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let record = if record.starts_with(|c: char| c.is_ascii_digit()) { format!("_{record}") } else { record };
        format!(
            r#"{{"type":"record","name":"{}","namespace":"ferry.resources","doc":"{}","fields":[{}]}}"#,
            record,
            self.about.replace('\\', "\\\\").replace('"', "\\\""),
            fields.join(",")
        )
    }

    pub(crate) fn to_wit(&self) -> ResourceInfo {
        let mut tables = vec![TableGrant { table: self.table.clone(), columns: self.columns() }];
        tables.extend(self.extra_tables.iter().map(|(table, columns)| TableGrant { table: table.clone(), columns: columns.clone() }));
        ResourceInfo {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.about.clone(),
            schema: self.avro_schema(),
            tables,
            window_column: self.window.clone(),
            main_table: self.table.clone(),
            created_column: self.created.clone(),
            key: self.key.clone(),
            references: self.references.clone(),
            copied: self
                .fields
                .iter()
                .filter(|f| !f.column.is_empty())
                .map(|f| FieldColumn { field: f.name.clone(), column: f.column.clone() })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_name_that_is_no_avro_name_makes_a_valid_record_name() {
        let schema = Describe::new("my-plugin", "0.1.0").computed("n", Type::Long).avro_schema();
        assert!(schema.contains(r#""name":"my_plugin""#), "{schema}");
        let schema = Describe::new("2fa-codes", "0.1.0").computed("n", Type::Long).avro_schema();
        assert!(schema.contains(r#""name":"_2fa_codes""#), "{schema}");
        let schema = Describe::new("users", "0.1.0").computed("n", Type::Long).avro_schema();
        assert!(schema.contains(r#""name":"users""#), "{schema}");
    }
}
