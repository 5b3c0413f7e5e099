//! A schema's fingerprints (Avro specification, "Schema Fingerprints"): CRC-64-AVRO
//! (Rabin) and SHA-256 of its Parsing Canonical Form, so a loader can tell that a
//! resource's schema changed without diffing JSON.

use apache_avro::Schema;
use apache_avro::rabin::Rabin;
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

impl SchemaFingerprint {
    pub fn of(schema: &Schema) -> SchemaFingerprint {
        let canonical = schema.canonical_form();
        SchemaFingerprint {
            crc64_avro: hex::encode(schema.fingerprint::<Rabin>().bytes),
            sha256: hex::encode(Sha256::digest(canonical.as_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_fingerprints_match_the_specification() {
        // The Avro specification's test vectors (share/test/data/schema-tests.txt):
        // "int" has CRC-64-AVRO 0x7275d51a3f395c8f, "null" 0x63dd24e7cc258f8a.
        let int = SchemaFingerprint::of(&Schema::parse_str("\"int\"").unwrap());
        assert_eq!(int.crc64_avro, hex::encode(0x7275d51a3f395c8f_u64.to_le_bytes()));
        let null = SchemaFingerprint::of(&Schema::parse_str("\"null\"").unwrap());
        assert_eq!(null.crc64_avro, hex::encode(0x63dd24e7cc258f8a_u64.to_le_bytes()));
        assert_eq!(int.sha256, hex::encode(Sha256::digest(b"\"int\"")));
    }

    #[test]
    fn docs_and_field_order_of_attributes_do_not_change_it_but_a_field_does() {
        let a = Schema::parse_str(r#"{"type":"record","name":"u","doc":"x","fields":[{"name":"guid","type":"string"}]}"#).unwrap();
        let b = Schema::parse_str(r#"{"fields":[{"type":"string","name":"guid","doc":"y"}],"name":"u","type":"record"}"#).unwrap();
        let c = Schema::parse_str(r#"{"type":"record","name":"u","fields":[{"name":"guid","type":["null","string"]}]}"#).unwrap();
        assert_eq!(SchemaFingerprint::of(&a), SchemaFingerprint::of(&b));
        assert_ne!(SchemaFingerprint::of(&a), SchemaFingerprint::of(&c));
    }
}
