//! Records by field name: [`Record`] holds a value per declared field and writes them
//! in schema order, with the null/value branch of a nullable field chosen for you.

use ferry_wire::avro::{self, NULL_BRANCH, VALUE_BRANCH};
use ferry_wire::{decimal, varint};

use crate::describe::{Describe, Field, Type};
use crate::values::Decimal;
use crate::{Cell, Error, Result};

/// A value for a record field; `From` covers the usual Rust types and `Option`s of them
/// (`None` is NULL).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'v> {
    Null,
    Long(i64),
    Double(f64),
    Boolean(bool),
    Text(&'v str),
    Bytes(&'v [u8]),
    Decimal(Decimal),
}

macro_rules! value_from {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl<'v> From<$t> for Value<'v> {
            fn from(v: $t) -> Self {
                Value::$v(v.into())
            }
        }
    )*};
}

value_from!(i64 => Long, i32 => Long, u32 => Long, f64 => Double, bool => Boolean, Decimal => Decimal, &'v str => Text, &'v [u8] => Bytes);

impl<'v> From<&'v String> for Value<'v> {
    fn from(v: &'v String) -> Self {
        Value::Text(v)
    }
}

impl<'v> From<Cell<'v>> for Value<'v> {
    fn from(c: Cell<'v>) -> Self {
        match c {
            Cell::Null => Value::Null,
            Cell::Integer(n) => Value::Long(n),
            Cell::Real(r) => Value::Double(r),
            Cell::Text(t) => Value::Text(t),
            Cell::Blob(b) => Value::Bytes(b),
        }
    }
}

impl<'v, T: Into<Value<'v>>> From<Option<T>> for Value<'v> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<'v, T> From<&'v Option<T>> for Value<'v>
where
    &'v T: Into<Value<'v>>,
{
    fn from(v: &'v Option<T>) -> Self {
        v.as_ref().map_or(Value::Null, Into::into)
    }
}

impl<'v> From<&'v Decimal> for Value<'v> {
    fn from(v: &'v Decimal) -> Self {
        Value::Decimal(*v)
    }
}

impl<'v> From<&'v i64> for Value<'v> {
    fn from(v: &'v i64) -> Self {
        Value::Long(*v)
    }
}

impl Value<'_> {
    fn describe(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Long(n) => format!("integer {n}"),
            Value::Double(r) => format!("double {r}"),
            Value::Boolean(b) => format!("boolean {b}"),
            Value::Text(t) => Cell::Text(t).describe(),
            Value::Bytes(b) => format!("{} bytes", b.len()),
            Value::Decimal(d) => format!("decimal {d}"),
        }
    }
}

/// One record being built: `cx.emit(cx.record().set("category", c).set("debits", d))`.
/// Fields are named as declared; an unset nullable field is NULL. A wrong name, a
/// missing field or a value that does not fit its field fails [`crate::Export::emit`].
pub struct Record<'d, 'v> {
    describe: &'d Describe,
    values: Vec<Option<Value<'v>>>,
    unknown: Vec<String>,
}

impl<'d, 'v> Record<'d, 'v> {
    pub(crate) fn new(describe: &'d Describe) -> Self {
        Record { describe, values: vec![None; describe.fields.len()], unknown: Vec::new() }
    }

    /// Sets the declared field `field`.
    pub fn set(&mut self, field: &str, value: impl Into<Value<'v>>) -> &mut Self {
        match self.describe.fields.iter().position(|f| f.name == field) {
            Some(i) => self.values[i] = Some(value.into()),
            None => self.unknown.push(field.into()),
        }
        self
    }

    /// Appends the record's Avro encoding to `buf` (leaves `buf` as it was on error).
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        let d = self.describe;
        if let Some(name) = self.unknown.first() {
            let names: Vec<&str> = d.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(Error::InvalidArgument(format!(
                "resource `{}` has no field `{name}`; declare it in describe or use one of: {}",
                d.name,
                names.join(", ")
            )));
        }
        let mark = buf.len();
        for (f, v) in d.fields.iter().zip(&self.values) {
            if let Err(why) = encode_field(buf, f, v.unwrap_or(Value::Null), v.is_none()) {
                buf.truncate(mark);
                return Err(Error::bad_data(format!("resource `{}`, field `{}` ({}): {why}", d.name, f.name, f.type_name())));
            }
        }
        Ok(())
    }
}

fn encode_field(buf: &mut Vec<u8>, f: &Field, v: Value, unset: bool) -> core::result::Result<(), String> {
    if v == Value::Null {
        return match (f.nullable, unset) {
            (true, _) => {
                buf.push(NULL_BRANCH);
                Ok(())
            }
            (false, true) => Err("not set; set it, or declare it with `.or_null()` if it may be missing".into()),
            (false, false) => Err("got NULL but the field is not nullable; declare it with `.or_null()` or set a value".into()),
        };
    }
    if f.nullable {
        buf.push(VALUE_BRANCH);
    }
    let wrong = || format!("got {}; set a value of the field's type", v.describe());
    match (f.ty, v) {
        (Type::String, Value::Text(t)) => avro::write_string(buf, t),
        (Type::Long | Type::TimestampMicros, Value::Long(n)) => varint::write_long(buf, n),
        (Type::Int, Value::Long(n)) => avro::write_int(buf, i32::try_from(n).map_err(|_| format!("{n} does not fit 32 bits"))?),
        (Type::Boolean, Value::Boolean(b)) => buf.push(b as u8),
        (Type::Double, Value::Double(r)) => buf.extend_from_slice(&r.to_le_bytes()),
        (Type::Double, Value::Long(n)) => buf.extend_from_slice(&(n as f64).to_le_bytes()),
        (Type::Decimal { precision, scale }, Value::Decimal(d)) => {
            let unscaled = d
                .at_scale(scale)
                .ok_or_else(|| format!("{d} has more than {scale} digits after the point; round it first (`Decimal::round({scale})`)"))?;
            if !decimal::fits(unscaled, precision.into()) {
                return Err(format!("{d} has more than {precision} digits at scale {scale}"));
            }
            decimal::write(buf, unscaled)
        }
        (Type::Decimal { .. }, Value::Long(n)) => return encode_field(buf, f, Value::Decimal(n.into()), false).map(|_| ()),
        _ => return Err(wrong()),
    }
    Ok(())
}
