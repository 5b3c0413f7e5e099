//! CSV (RFC 4180): a header row of field names, then one row per record; UTF-8, values
//! rendered by [`super::value`] (null is an empty field; nested values are JSON).

use std::io::Write;
use std::sync::Arc;

use super::value::{FieldValue, decode};
use super::{DatumWriter, FormatError};
use crate::records::RecordSchema;

pub struct CsvWriter<W: Write> {
    schema: Arc<RecordSchema>,
    out: csv::Writer<W>,
    row: csv::ByteRecord,
    cell: Vec<u8>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(schema: Arc<RecordSchema>, inner: W) -> Result<Self, FormatError> {
        let mut out = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(inner);
        out.write_record(schema.fields.iter().map(|(name, _)| name.as_bytes()))?;
        Ok(CsvWriter { schema, out, row: csv::ByteRecord::new(), cell: Vec::new() })
    }
}

impl<W: Write + Send> DatumWriter<W> for CsvWriter<W> {
    fn append(&mut self, datums: &[u8], ends: &[u32], _base: usize) -> Result<(), FormatError> {
        let mut pos = 0;
        for _ in ends {
            self.row.clear();
            for (_, kind) in &self.schema.fields {
                let (v, p) = decode(kind, datums, pos);
                pos = p;
                self.cell.clear();
                match v {
                    FieldValue::Null => {}
                    FieldValue::Bool(b) => self.cell.extend_from_slice(if b { b"true" } else { b"false" }),
                    FieldValue::Int(n) => self.cell.extend_from_slice(n.to_string().as_bytes()),
                    FieldValue::Float(f) => self.cell.extend_from_slice(f.to_string().as_bytes()),
                    FieldValue::Str(s) => self.cell.extend_from_slice(s.as_bytes()),
                    FieldValue::Text(s) => self.cell.extend_from_slice(s.as_bytes()),
                    FieldValue::Json(v) => self.cell.extend_from_slice(v.to_string().as_bytes()),
                }
                self.row.push_field(&self.cell);
            }
            self.out.write_byte_record(&self.row)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<W, FormatError> {
        self.out.into_inner().map_err(|e| FormatError::Io(e.into_error()))
    }
}
