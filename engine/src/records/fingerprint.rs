//! A schema's fingerprints (Avro specification, "Schema Fingerprints"): CRC-64-AVRO
//! (Rabin) and SHA-256 of its Parsing Canonical Form, so a loader can tell that a
//! resource's schema changed without diffing JSON.
//!
//! The canonical form is built here from the schema's JSON by the specification's rules
//! (PRIMITIVES, FULLNAMES, STRIP, ORDER, STRINGS, INTEGERS, WHITESPACE): apache-avro's
//! `canonical_form` keeps `logicalType` and its attributes, which STRIP removes, so its
//! fingerprints differ from Java's and fastavro's for any schema with a timestamp or decimal.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The fingerprints of one schema, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaFingerprint {
    /// CRC-64-AVRO of the Parsing Canonical Form: its 8 bytes little-endian, as the
    /// Java implementation, fastavro and single-object encoding give them.
    pub crc64_avro: String,
    /// SHA-256 of the Parsing Canonical Form.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("the schema is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the schema has {0}, which is not an Avro schema")]
    Shape(String),
}

impl SchemaFingerprint {
    /// The fingerprints of the schema `json` (an Avro schema as JSON text).
    pub fn of_json(json: &str) -> Result<SchemaFingerprint, FingerprintError> {
        let canonical = canonical_form(&serde_json::from_str(json)?)?;
        Ok(SchemaFingerprint {
            crc64_avro: hex::encode(crc64_avro(canonical.as_bytes()).to_le_bytes()),
            sha256: hex::encode(Sha256::digest(canonical.as_bytes())),
        })
    }
}

/// The Parsing Canonical Form of a schema.
pub fn canonical_form(schema: &Value) -> Result<String, FingerprintError> {
    let mut out = String::new();
    write_canonical(schema, "", &mut out)?;
    Ok(out)
}

const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// `name` in namespace `ns`, unless it already has one (FULLNAMES).
fn full_name(name: &str, ns: &str) -> String {
    if name.contains('.') || ns.is_empty() { name.to_string() } else { format!("{ns}.{name}") }
}

fn write_canonical(schema: &Value, ns: &str, out: &mut String) -> Result<(), FingerprintError> {
    let shape = |what: &str| FingerprintError::Shape(what.to_string());
    match schema {
        Value::String(s) if PRIMITIVES.contains(&s.as_str()) => out.push_str(&quoted(s)),
        Value::String(name) => out.push_str(&quoted(&full_name(name, ns))),
        Value::Array(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(b, ns, out)?;
            }
            out.push(']');
        }
        Value::Object(m) => {
            let ty = m.get("type").ok_or_else(|| shape("an object without \"type\""))?;
            let Value::String(ty) = ty else { return write_canonical(ty, ns, out) };
            match ty.as_str() {
                // A primitive with attributes (a logical type) is the primitive (STRIP, PRIMITIVES).
                t if PRIMITIVES.contains(&t) => out.push_str(&quoted(t)),
                "record" | "error" | "enum" | "fixed" => {
                    let name = m.get("name").and_then(Value::as_str).ok_or_else(|| shape("a named type without a name"))?;
                    let own_ns = m.get("namespace").and_then(Value::as_str).unwrap_or(ns);
                    let full = full_name(name, own_ns);
                    let inner_ns = full.rsplit_once('.').map(|(n, _)| n).unwrap_or("");
                    out.push_str(&format!("{{\"name\":{},\"type\":{}", quoted(&full), quoted(ty)));
                    match ty.as_str() {
                        "enum" => {
                            let symbols = m.get("symbols").ok_or_else(|| shape("an enum without symbols"))?;
                            out.push_str(&format!(",\"symbols\":{symbols}"));
                        }
                        "fixed" => {
                            let size = m.get("size").and_then(Value::as_u64).ok_or_else(|| shape("a fixed without a size"))?;
                            out.push_str(&format!(",\"size\":{size}"));
                        }
                        _ => {
                            let fields = m.get("fields").and_then(Value::as_array).ok_or_else(|| shape("a record without fields"))?;
                            out.push_str(",\"fields\":[");
                            for (i, f) in fields.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let name = f.get("name").and_then(Value::as_str).ok_or_else(|| shape("a field without a name"))?;
                                out.push_str(&format!("{{\"name\":{},\"type\":", quoted(name)));
                                write_canonical(f.get("type").ok_or_else(|| shape("a field without a type"))?, inner_ns, out)?;
                                out.push('}');
                            }
                            out.push(']');
                        }
                    }
                    out.push('}');
                }
                "array" => {
                    out.push_str("{\"type\":\"array\",\"items\":");
                    write_canonical(m.get("items").ok_or_else(|| shape("an array without items"))?, ns, out)?;
                    out.push('}');
                }
                "map" => {
                    out.push_str("{\"type\":\"map\",\"values\":");
                    write_canonical(m.get("values").ok_or_else(|| shape("a map without values"))?, ns, out)?;
                    out.push('}');
                }
                name => out.push_str(&quoted(&full_name(name, ns))),
            }
        }
        other => return Err(shape(&format!("the value {other}"))),
    }
    Ok(())
}

/// CRC-64-AVRO (the specification's Rabin fingerprint) of `data`.
fn crc64_avro(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u64; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut fp = i as u64;
            for _ in 0..8 {
                fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
            }
            *slot = fp;
        }
        t
    });
    data.iter().fold(EMPTY, |fp, &b| (fp >> 8) ^ table[((fp ^ b as u64) & 0xff) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(json: &str) -> SchemaFingerprint {
        SchemaFingerprint::of_json(json).unwrap()
    }

    #[test]
    fn fingerprints_match_the_specifications_test_vectors() {
        // Avro's share/test/data/schema-tests.txt: "int" -> 8247732601305521295,
        // "null" -> 7195948357588979594 (CRC-64-AVRO as signed 64-bit integers).
        assert_eq!(crc64_avro(b"\"int\""), 8247732601305521295);
        assert_eq!(crc64_avro(b"\"null\""), 7195948357588979594);
        assert_eq!(fp("{\"type\": \"int\"}").crc64_avro, hex::encode(8247732601305521295u64.to_le_bytes()));
        assert_eq!(fp("\"int\"").sha256, hex::encode(Sha256::digest(b"\"int\"")));
    }

    #[test]
    fn the_canonical_form_follows_the_rules() {
        let schema: Value = serde_json::from_str(
            r#"{"type":"record","name":"u","namespace":"ferry","doc":"x","fields":[
                {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"d"},
                {"name":"m","type":["null",{"type":"bytes","logicalType":"decimal","precision":14,"scale":2}],"default":null},
                {"name":"e","type":{"type":"enum","name":"k","symbols":["A","B"]}},
                {"name":"f","type":{"type":"fixed","name":"other.h","size":4}},
                {"name":"l","type":{"type":"array","items":"k"}},
                {"name":"v","type":{"type":"map","values":"other.h"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            canonical_form(&schema).unwrap(),
            r#"{"name":"ferry.u","type":"record","fields":[{"name":"at","type":"long"},{"name":"m","type":["null","bytes"]},{"name":"e","type":{"name":"ferry.k","type":"enum","symbols":["A","B"]}},{"name":"f","type":{"name":"other.h","type":"fixed","size":4}},{"name":"l","type":{"type":"array","items":"ferry.k"}},{"name":"v","type":{"type":"map","values":"other.h"}}]}"#
        );
    }

    #[test]
    fn docs_and_attribute_order_do_not_change_it_but_a_field_does() {
        let a = fp(r#"{"type":"record","name":"u","doc":"x","fields":[{"name":"guid","type":"string"}]}"#);
        let b = fp(r#"{"fields":[{"type":"string","name":"guid","doc":"y"}],"name":"u","type":"record"}"#);
        let c = fp(r#"{"type":"record","name":"u","fields":[{"name":"guid","type":["null","string"]}]}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(SchemaFingerprint::of_json("{\"fields\": []}").is_err());
    }
}
