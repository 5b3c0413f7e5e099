//! Property tests of the batch validator against an independent Avro implementation:
//! batches apache-avro encodes must be accepted with the right record ends; mutated
//! batches must never panic, and any batch the validator accepts must decode with
//! apache-avro to exactly the ends it returned. `formats::value`'s tests run ferry's own
//! decoder over the same generated batches (formats is the layer above; it imports
//! these generators, never the other way). `fuzz/` runs the checks for longer.

use apache_avro::schema::{InnerDecimalSchema, Schema};
use apache_avro::types::Value;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{RecordSchema, validate_batch};

/// Together these cover every `Kind`: primitives, nullable unions, timestamps, dates,
/// decimals (bytes and fixed), fixed, enums, arrays, maps, nested records.
pub(crate) const SCHEMAS: &[&str] = &[
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
    r#"{"type":"record","name":"money","fields":[
        {"name":"balance","type":{"type":"bytes","logicalType":"decimal","precision":14,"scale":2}},
        {"name":"rate","type":{"type":"fixed","name":"rate","size":8,"logicalType":"decimal","precision":10,"scale":6}},
        {"name":"big","type":["null",{"type":"bytes","logicalType":"decimal","precision":38,"scale":10}]},
        {"name":"tiny","type":{"type":"bytes","logicalType":"decimal","precision":1,"scale":0}},
        {"name":"tag","type":{"type":"fixed","name":"tag","size":4}},
        {"name":"blob","type":"bytes"}]}"#,
    r#"{"type":"record","name":"collections","fields":[
        {"name":"status","type":{"type":"enum","name":"status","symbols":["OPEN","CLOSED","PENDING"]}},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"counts","type":{"type":"map","values":"long"}},
        {"name":"maybe","type":{"type":"array","items":["null","int"]}},
        {"name":"flags","type":{"type":"map","values":{"type":"array","items":"boolean"}}},
        {"name":"nulls","type":{"type":"map","values":"null"}}]}"#,
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
        {"name":"any","type":["null","string","long","double","boolean","bytes"]}]}"#,
    r#"{"type":"record","name":"misc","fields":[
        {"name":"nothing","type":"null"},
        {"name":"t_ms","type":{"type":"int","logicalType":"time-millis"}},
        {"name":"t_us","type":{"type":"long","logicalType":"time-micros"}},
        {"name":"local_us","type":{"type":"long","logicalType":"local-timestamp-micros"}},
        {"name":"nanos","type":{"type":"long","logicalType":"timestamp-nanos"}},
        {"name":"uuid","type":{"type":"string","logicalType":"uuid"}},
        {"name":"opt","type":["null",{"type":"fixed","name":"f2","size":2}]}]}"#,
];

/// Microseconds of 0001-01-01 and 9999-12-31T23:59:59.999999 (the validator's range).
const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

pub(crate) fn schema(i: usize) -> RecordSchema {
    RecordSchema::parse(SCHEMAS[i]).unwrap()
}

/// A random value valid for `schema` (including every logical type's range).
fn value(schema: &Schema, rng: &mut ChaCha8Rng, depth: u32) -> Value {
    let len = |rng: &mut ChaCha8Rng| if depth > 2 { 0 } else { rng.random_range(0..4usize) };
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(rng.random()),
        Schema::Int => Value::Int(rng.random()),
        Schema::Long => Value::Long(rng.random()),
        Schema::Float => Value::Float(rng.random()),
        Schema::Double => Value::Double(rng.random()),
        Schema::Bytes => Value::Bytes((0..rng.random_range(0..6)).map(|_| rng.random()).collect()),
        Schema::String => Value::String(text(rng)),
        Schema::Uuid(_) => Value::Uuid(uuid::Uuid::from_u128(rng.random())),
        Schema::Fixed(f) => Value::Fixed(f.size, (0..f.size).map(|_| rng.random()).collect()),
        Schema::Date => Value::Date(rng.random_range((MIN_MICROS / 86_400_000_000) as i32..=(MAX_MICROS / 86_400_000_000) as i32)),
        Schema::TimeMillis => Value::TimeMillis(rng.random_range(0..86_400_000)),
        Schema::TimeMicros => Value::TimeMicros(rng.random_range(0..86_400_000_000)),
        Schema::TimestampMillis => Value::TimestampMillis(rng.random_range(MIN_MICROS / 1000..=MAX_MICROS / 1000)),
        Schema::TimestampMicros => Value::TimestampMicros(rng.random_range(MIN_MICROS..=MAX_MICROS)),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(rng.random_range(MIN_MICROS..=MAX_MICROS)),
        Schema::TimestampNanos => Value::TimestampNanos(rng.random()),
        Schema::Decimal(d) => {
            let limit = 10i128.pow(d.precision as u32);
            let v = rng.random_range(-limit + 1..limit);
            let mut bytes = v.to_be_bytes().to_vec();
            // Shortest two's complement: drop sign-extension bytes.
            while bytes.len() > 1 && ((bytes[0] == 0 && bytes[1] & 0x80 == 0) || (bytes[0] == 0xff && bytes[1] & 0x80 != 0)) {
                bytes.remove(0);
            }
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                let fill = if v < 0 { 0xff } else { 0 };
                let mut padded = vec![fill; f.size - bytes.len()];
                padded.extend(bytes);
                bytes = padded;
            }
            Value::Decimal(bytes.into())
        }
        Schema::Enum(e) => {
            let i = rng.random_range(0..e.symbols.len());
            Value::Enum(i as u32, e.symbols[i].clone())
        }
        Schema::Array(a) => Value::Array((0..len(rng)).map(|_| value(&a.items, rng, depth + 1)).collect()),
        Schema::Map(m) => Value::Map((0..len(rng)).map(|i| (format!("{}{i}", text(rng)), value(&m.types, rng, depth + 1))).collect()),
        Schema::Union(u) => {
            let i = rng.random_range(0..u.variants().len());
            Value::Union(i as u32, Box::new(value(&u.variants()[i], rng, depth + 1)))
        }
        Schema::Record(r) => Value::Record(r.fields.iter().map(|f| (f.name.clone(), value(&f.schema, rng, depth + 1))).collect()),
        other => panic!("the test schemas do not use {other:?}"),
    }
}

fn text(rng: &mut ChaCha8Rng) -> String {
    const CHARS: &[char] = &['a', 'Z', '0', ' ', '"', '\\', 'é', 'ß', '€', '日', '😀', '\u{0}', '\n'];
    (0..rng.random_range(0..8)).map(|_| CHARS[rng.random_range(0..CHARS.len())]).collect()
}

/// `count` records apache-avro encoded, and where each ends.
pub(crate) fn encoded(schema: &RecordSchema, count: usize, seed: u64) -> (Vec<u8>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut data, mut ends) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let v = value(&schema.avro, &mut rng, 0);
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema.avro).build().unwrap();
        data.extend(writer.write_value_to_vec(v).expect("apache-avro encodes a valid value"));
        ends.push(data.len() as u32);
    }
    (data, ends)
}

/// What must hold of any batch the validator accepted.
pub(crate) fn assert_consistent(schema: &RecordSchema, count: u32, data: &[u8], ends: &[u32]) {
    assert_eq!(ends.len(), count as usize, "one end per record");
    assert_eq!(ends.last().map_or(0, |&e| e as usize), data.len(), "the last record ends the batch");
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        let end = end as usize;
        assert!(end > start, "record {i}: ends must strictly increase ({start} then {end})");
        let mut record = &data[start..end];
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema.avro).build().unwrap();
        if let Err(e) = reader.read_value(&mut record) {
            panic!("record {i} was accepted but apache-avro refuses it: {e}");
        }
        assert!(record.is_empty(), "record {i}: apache-avro left {} of its bytes unread", record.len());
        start = end;
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    Flip { at: usize, xor: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { at: usize },
    Count { delta: i8 },
}

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        (any::<usize>(), prop_oneof![Just(0u8), Just(1), Just(2), Just(0x7f), Just(0x80), Just(0xff), any::<u8>()])
            .prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (-2..=2i8).prop_map(|delta| Mutation::Count { delta }),
    ]
}

/// `count` generated records damaged by `mutations`: the claimed count and the bytes.
pub(crate) fn damaged(schema: &RecordSchema, count: usize, seed: u64, mutations: &[Mutation]) -> (u32, Vec<u8>) {
    let (mut data, _) = encoded(schema, count, seed);
    let mut claimed = count as u32;
    for m in mutations {
        apply(m, &mut claimed, &mut data);
    }
    (claimed, data)
}

fn apply(m: &Mutation, count: &mut u32, data: &mut Vec<u8>) {
    let n = data.len();
    match *m {
        Mutation::Flip { at, xor } if n > 0 => data[at % n] ^= xor,
        Mutation::Set { at, byte } if n > 0 => data[at % n] = byte,
        Mutation::Insert { at, byte } => data.insert(at % (n + 1), byte),
        Mutation::Remove { at } if n > 0 => {
            data.remove(at % n);
        }
        Mutation::Truncate { at } => data.truncate(at % (n + 1)),
        Mutation::Count { delta } => *count = count.saturating_add_signed(delta as i32),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever apache-avro writes, the validator accepts with the records' true ends.
    #[test]
    fn accepts_what_apache_avro_encodes(which in 0..SCHEMAS.len(), count in 0..6usize, seed in any::<u64>()) {
        let schema = schema(which);
        let (data, ends) = encoded(&schema, count, seed);
        prop_assert_eq!(validate_batch(&schema, count as u32, &data), Ok(ends.clone()));
        assert_consistent(&schema, count as u32, &data, &ends);
    }

    /// Damaged batches never panic, and what is still accepted is still consistent.
    #[test]
    fn damaged_batches_are_refused_or_consistent(
        which in 0..SCHEMAS.len(),
        count in 0..4usize,
        seed in any::<u64>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let schema = schema(which);
        let (claimed, data) = damaged(&schema, count, seed, &mutations);
        if let Ok(ends) = validate_batch(&schema, claimed, &data) {
            assert_consistent(&schema, claimed, &data, &ends);
        }
    }

    /// Random bytes under any claimed count, huge ones included: no panic, no huge
    /// allocation, and any acceptance is consistent.
    #[test]
    fn random_bytes_are_refused_or_consistent(
        which in 0..SCHEMAS.len(),
        count in prop_oneof![0..8u32, Just(u32::MAX), any::<u32>()],
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let schema = schema(which);
        if let Ok(ends) = validate_batch(&schema, count, &data) {
            assert_consistent(&schema, count, &data, &ends);
        }
    }
}
