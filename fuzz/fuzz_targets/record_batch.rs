//! The host's batch validator against arbitrary batches.
//!
//! Input: byte 0 picks one of the schemas below (together they cover every `Kind`),
//! byte 1 is the claimed record count (0xff: the next 4 bytes are a little-endian u32,
//! for lies about huge counts), the rest is the batch. The validator must never panic or
//! hang, and whatever it accepts must be consistent: ends strictly increasing, the last
//! at the end of the data, every record decoding with apache-avro (an independent
//! decoder) to exactly its bytes, and ferry's own formats decoder (which trusts validated
//! input) decoding it without a panic to the same ends.
#![no_main]

use std::sync::OnceLock;

use ferry::records::{RecordSchema, validate_batch};
use libfuzzer_sys::fuzz_target;

const SCHEMAS: &[&str] = &[
    // Primitives, nullable unions, timestamps, dates.
    r#"{"type":"record","name":"users","fields":[
        {"name":"guid","type":"string"},
        {"name":"email","type":["null","string"]},
        {"name":"created_at","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"seen_at","type":["null",{"type":"long","logicalType":"timestamp-millis"}]},
        {"name":"birthday","type":["null",{"type":"int","logicalType":"date"}]},
        {"name":"active","type":"boolean"},
        {"name":"age","type":"int"},
        {"name":"n","type":"long"},
        {"name":"f","type":"float"},
        {"name":"d","type":"double"}]}"#,
    // Decimals (bytes and fixed), fixed, bytes.
    r#"{"type":"record","name":"money","fields":[
        {"name":"balance","type":{"type":"bytes","logicalType":"decimal","precision":14,"scale":2}},
        {"name":"rate","type":{"type":"fixed","name":"rate","size":8,"logicalType":"decimal","precision":10,"scale":6}},
        {"name":"big","type":["null",{"type":"bytes","logicalType":"decimal","precision":38,"scale":10}]},
        {"name":"tiny","type":{"type":"bytes","logicalType":"decimal","precision":1,"scale":0}},
        {"name":"wide","type":{"type":"fixed","name":"wide","size":17,"logicalType":"decimal","precision":38,"scale":38}},
        {"name":"tag","type":{"type":"fixed","name":"tag","size":4}},
        {"name":"blob","type":"bytes"}]}"#,
    // Enums, arrays, maps.
    r#"{"type":"record","name":"collections","fields":[
        {"name":"status","type":{"type":"enum","name":"status","symbols":["OPEN","CLOSED","PENDING"]}},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"counts","type":{"type":"map","values":"long"}},
        {"name":"maybe","type":{"type":"array","items":["null","int"]}},
        {"name":"flags","type":{"type":"map","values":{"type":"array","items":"boolean"}}},
        {"name":"nulls","type":{"type":"map","values":"null"}},
        {"name":"grid","type":{"type":"array","items":{"type":"array","items":"long"}}}]}"#,
    // Nested records, unions of several branches, logical types inside collections.
    r#"{"type":"record","name":"nested","fields":[
        {"name":"id","type":"long"},
        {"name":"owner","type":{"type":"record","name":"owner","fields":[
            {"name":"name","type":"string"},
            {"name":"address","type":["null",{"type":"record","name":"address","fields":[
                {"name":"line","type":"string"},
                {"name":"since","type":{"type":"int","logicalType":"date"}}]}]}]}},
        {"name":"items","type":{"type":"array","items":{"type":"record","name":"item","fields":[
            {"name":"sku","type":"string"},
            {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
            {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}}]}}},
        {"name":"any","type":["null","string","long","double","boolean","bytes"]},
        {"name":"kinds","type":{"type":"map","values":{"type":"enum","name":"kind","symbols":["A","B"]}}}]}"#,
    // The remaining logical types and zero-width values inside wider ones.
    r#"{"type":"record","name":"misc","fields":[
        {"name":"nothing","type":"null"},
        {"name":"t_ms","type":{"type":"int","logicalType":"time-millis"}},
        {"name":"t_us","type":{"type":"long","logicalType":"time-micros"}},
        {"name":"local_ms","type":{"type":"long","logicalType":"local-timestamp-millis"}},
        {"name":"local_us","type":{"type":"long","logicalType":"local-timestamp-micros"}},
        {"name":"nanos","type":{"type":"long","logicalType":"timestamp-nanos"}},
        {"name":"uuid","type":{"type":"string","logicalType":"uuid"}},
        {"name":"empty","type":{"type":"fixed","name":"empty","size":0}},
        {"name":"opt","type":["null",{"type":"fixed","name":"f2","size":2}]}]}"#,
    // Zero-width array items: refused by the schema check, or else bounded by the validator.
    r#"{"type":"record","name":"zero","fields":[
        {"name":"id","type":"int"},
        {"name":"nulls","type":{"type":"array","items":"null"}}]}"#,
];

fn schemas() -> &'static [Option<RecordSchema>] {
    static S: OnceLock<Vec<Option<RecordSchema>>> = OnceLock::new();
    S.get_or_init(|| SCHEMAS.iter().map(|j| RecordSchema::parse(j).ok()).collect())
}

fuzz_target!(|input: &[u8]| {
    let [pick, c, rest @ ..] = input else { return };
    let Some(schema) = &schemas()[*pick as usize % SCHEMAS.len()] else { return };
    let (count, data) = match (c, rest) {
        (0xff, [a, b, c, d, data @ ..]) => (u32::from_le_bytes([*a, *b, *c, *d]), data),
        (0xff, _) => return,
        (c, data) => (*c as u32, data),
    };
    let Ok(ends) = validate_batch(schema, count, data) else { return };

    assert_eq!(ends.len(), count as usize, "one end per record");
    assert_eq!(ends.last().map_or(0, |&e| e as usize), data.len(), "the last record ends the batch");
    let mut start = 0usize;
    for (i, &end) in ends.iter().enumerate() {
        let end = end as usize;
        assert!(end > start, "record {i}: ends not strictly increasing");
        let mut record = &data[start..end];
        apache_avro::from_avro_datum(&schema.avro, &mut record, None)
            .unwrap_or_else(|e| panic!("record {i} was accepted but apache-avro refuses it: {e}"));
        assert!(record.is_empty(), "record {i}: apache-avro left {} bytes of it unread", record.len());
        let mut pos = start;
        for (_, kind) in &schema.fields {
            let (value, p) = ferry::formats::value::decode(kind, data, pos);
            let _ = value.to_json();
            pos = p;
        }
        assert_eq!(pos, end, "record {i}: the formats decoder and the validator disagree on its end");
        start = end;
    }
});
