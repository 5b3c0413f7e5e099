//! A plugin's declared Avro schema, parsed by apache-avro and compiled into the flat
//! plan the validator walks.

use apache_avro::Schema;
use apache_avro::schema::InnerDecimalSchema;

/// What one value must look like on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    /// A `string` holding a UUID in a form readers parse (`uuid` logical type).
    Uuid,
    Fixed(usize),
    /// `int` days since the epoch, within years 1..=9999.
    Date,
    /// `long` since the epoch at this many units per second, within years 1..=9999.
    Timestamp { per_second: i64 },
    /// `bytes` (or `fixed(n)`) holding a two's-complement unscaled value below 10^precision.
    Decimal { precision: u32, scale: u32, fixed: Option<usize> },
    /// The symbols, in index order.
    Enum(Vec<String>),
    Array(Box<Kind>),
    Map(Box<Kind>),
    Union(Vec<Kind>),
    Record(Vec<(String, Kind)>),
}

/// The compiled schema of a resource's records.
#[derive(Debug, Clone)]
pub struct RecordSchema {
    /// The schema as apache-avro parsed it (written into every Avro file's header).
    pub avro: Schema,
    /// The schema as the plugin declared it (JSON), logical types included.
    pub json: String,
    pub fields: Vec<(String, Kind)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the declared schema is not valid Avro: {0}")]
    Parse(#[from] apache_avro::Error),
    #[error("the declared schema must be a record, found {0}")]
    NotARecord(String),
    #[error("field `{field}` uses {what}, which ferry does not export; use a primitive, logical, enum, array, map, union or nested record type")]
    Unsupported { field: String, what: String },
    #[error("field `{field}` declares decimal precision {precision}; ferry supports 1 to 38")]
    Precision { field: String, precision: usize },
    #[error("every field is null or empty, so a record would take no bytes; declare at least one field that carries data")]
    NoData,
}

impl RecordSchema {
    pub fn parse(json: &str) -> Result<Self, SchemaError> {
        let avro = Schema::parse_str(json)?;
        let Schema::Record(record) = &avro else {
            return Err(SchemaError::NotARecord(format!("{:?}", apache_avro::schema::SchemaKind::from(&avro))));
        };
        let fields = record
            .fields
            .iter()
            .map(|f| Ok((f.name.clone(), compile(&f.name, &f.schema)?)))
            .collect::<Result<Vec<_>, SchemaError>>()?;
        // The validator's work is bounded by the batch's size because every record and
        // every array item takes at least one byte.
        if fields.iter().all(|(_, k)| zero_width(k)) {
            return Err(SchemaError::NoData);
        }
        let json = json.to_string();
        Ok(RecordSchema { avro, json, fields })
    }
}

fn compile(field: &str, schema: &Schema) -> Result<Kind, SchemaError> {
    let unsupported = |what: &str| SchemaError::Unsupported { field: field.into(), what: what.into() };
    Ok(match schema {
        Schema::Null => Kind::Null,
        Schema::Boolean => Kind::Boolean,
        Schema::Int | Schema::TimeMillis => Kind::Int,
        Schema::Long | Schema::TimeMicros => Kind::Long,
        Schema::Float => Kind::Float,
        Schema::Double => Kind::Double,
        Schema::Bytes => Kind::Bytes,
        Schema::String => Kind::String,
        Schema::Uuid(apache_avro::schema::UuidSchema::String) => Kind::Uuid,
        Schema::Fixed(f) => Kind::Fixed(f.size),
        Schema::Date => Kind::Date,
        Schema::TimestampMillis | Schema::LocalTimestampMillis => Kind::Timestamp { per_second: 1_000 },
        Schema::TimestampMicros | Schema::LocalTimestampMicros => Kind::Timestamp { per_second: 1_000_000 },
        Schema::TimestampNanos | Schema::LocalTimestampNanos => Kind::Long,
        Schema::Decimal(d) => {
            if d.precision == 0 || d.precision > 38 {
                return Err(SchemaError::Precision { field: field.into(), precision: d.precision });
            }
            let fixed = match &d.inner {
                InnerDecimalSchema::Bytes => None,
                InnerDecimalSchema::Fixed(f) => Some(f.size),
            };
            Kind::Decimal { precision: d.precision as u32, scale: d.scale as u32, fixed }
        }
        Schema::Enum(e) => Kind::Enum(e.symbols.clone()),
        Schema::Array(a) => {
            let item = compile(field, &a.items)?;
            // A block could claim 2^63 items of no bytes each: a batch of a few bytes
            // would keep the validator (and every reader) busy forever (found writing the fuzz targets).
            if zero_width(&item) {
                return Err(unsupported("an array of values that take no bytes (null, fixed(0) or records of those)"));
            }
            Kind::Array(Box::new(item))
        }
        Schema::Map(m) => Kind::Map(Box::new(compile(field, &m.types)?)),
        Schema::Union(u) => Kind::Union(u.variants().iter().map(|v| compile(field, v)).collect::<Result<_, _>>()?),
        Schema::Record(r) => Kind::Record(
            r.fields
                .iter()
                .map(|f| Ok((format!("{field}.{}", f.name), compile(&format!("{field}.{}", f.name), &f.schema)?)))
                .collect::<Result<_, SchemaError>>()?,
        ),
        Schema::Uuid(_) => return Err(unsupported("a uuid that is not a string")),
        Schema::BigDecimal => return Err(unsupported("big-decimal")),
        Schema::Duration(_) => return Err(unsupported("duration")),
        Schema::Ref { name } => return Err(unsupported(&format!("a reference to `{}`", name.fullname(None)))),
    })
}

/// Values of this kind take no bytes on the wire.
fn zero_width(kind: &Kind) -> bool {
    match kind {
        Kind::Null | Kind::Fixed(0) => true,
        Kind::Record(fields) => fields.iter().all(|(_, k)| zero_width(k)),
        _ => false,
    }
}
