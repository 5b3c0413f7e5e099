//! JSON Lines: one JSON object per record, fields in schema order; values rendered by
//! [`super::value`] (decimals and timestamps as strings, so no reader turns them into
//! binary floating point).

use std::io::Write;
use std::sync::Arc;

use super::value::{FieldValue, decode};
use super::{DatumWriter, FormatError};
use crate::records::RecordSchema;

pub struct JsonlWriter<W: Write> {
    schema: Arc<RecordSchema>,
    out: W,
    /// Each field's name, already JSON-quoted with its colon.
    keys: Vec<Vec<u8>>,
    line: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(schema: Arc<RecordSchema>, out: W) -> Self {
        let keys = schema.fields.iter().map(|(name, _)| format!("{}:", serde_json::Value::from(name.as_str())).into_bytes()).collect();
        JsonlWriter { schema, out, keys, line: Vec::with_capacity(4096) }
    }
}

impl<W: Write + Send> DatumWriter<W> for JsonlWriter<W> {
    fn append(&mut self, datums: &[u8], ends: &[u32], _base: usize) -> Result<(), FormatError> {
        let mut pos = 0;
        for _ in ends {
            self.line.clear();
            self.line.push(b'{');
            for (i, (_, kind)) in self.schema.fields.iter().enumerate() {
                if i > 0 {
                    self.line.push(b',');
                }
                self.line.extend_from_slice(&self.keys[i]);
                let (v, p) = decode(kind, datums, pos);
                pos = p;
                match v {
                    FieldValue::Null => self.line.extend_from_slice(b"null"),
                    FieldValue::Bool(b) => self.line.extend_from_slice(if b { b"true" } else { b"false" }),
                    FieldValue::Int(n) => self.line.extend_from_slice(n.to_string().as_bytes()),
                    FieldValue::Str(s) => serde_json::to_writer(&mut self.line, s).map_err(std::io::Error::from)?,
                    FieldValue::Text(s) => serde_json::to_writer(&mut self.line, &s).map_err(std::io::Error::from)?,
                    other => serde_json::to_writer(&mut self.line, &other.to_json()).map_err(std::io::Error::from)?,
                }
            }
            self.line.extend_from_slice(b"}\n");
            self.out.write_all(&self.line)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<W, FormatError> {
        self.out.flush()?;
        Ok(self.out)
    }
}
