//! The host's row-to-record copy against a reference written separately, decoded by an
//! independent Avro implementation (apache-avro), and passed through the validator.

use apache_avro::types::Value;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::records::validate_batch;
use crate::records::Cells;
use crate::source::RowBatchBuilder;

const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// The field types the kit declares, as Avro JSON.
const TYPES: &[&str] = &[
    r#""string""#,
    r#""long""#,
    r#""int""#,
    r#""boolean""#,
    r#""double""#,
    r#"{"type":"long","logicalType":"timestamp-micros"}"#,
    r#"{"type":"bytes","logicalType":"decimal","precision":14,"scale":2}"#,
    r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":6}"#,
    r#"{"type":"bytes","logicalType":"decimal","precision":38,"scale":10}"#,
    r#"{"type":"bytes","logicalType":"decimal","precision":3,"scale":0}"#,
];

fn schema_of(fields: &[(usize, bool)]) -> RecordSchema {
    let fields: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, &(t, nullable))| {
            let ty = if nullable { format!(r#"["null",{}]"#, TYPES[t]) } else { TYPES[t].to_string() };
            format!(r#"{{"name":"f{i}","type":{ty}}}"#)
        })
        .collect();
    RecordSchema::parse(&format!(r#"{{"type":"record","name":"r","fields":[{}]}}"#, fields.join(","))).unwrap()
}

#[derive(Debug, Clone, PartialEq)]
enum Src {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

fn push(b: &mut impl Cells, cell: &Src) {
    match cell {
        Src::Null => b.null(),
        Src::Integer(v) => b.integer(*v),
        Src::Real(v) => b.real(*v),
        Src::Text(t) => b.text(t),
        Src::Blob(v) => b.blob(v),
    }
}

/// Mostly values that fit, and the edges where they stop fitting.
fn cell(rng: &mut ChaCha8Rng) -> Src {
    const INTS: &[i64] = &[
        0, 1, 2, -1, 127, 128, -129, i32::MAX as i64, i32::MIN as i64, i32::MAX as i64 + 1, i32::MIN as i64 - 1,
        MIN_MICROS, MAX_MICROS, MIN_MICROS - 1, MAX_MICROS + 1, i64::MAX, i64::MIN, 99_999, 1_000,
    ];
    const TEXTS: &[&str] = &[
        "", "0", "-0", "+1", "1.", ".5", ".", "-", "12.3", "-0.05", "1.234", "1e3", " 1", "1,5", "999", "1000",
        "99999999999999999999999999.9999999999", "999999999999.99", "1000000000000.00", "123456789012345678", "1234567890123456789",
        "99999999999999999999999999999999999999", "0.000001", "-9.999999", "10.000000", "héllo", "日本",
    ];
    match rng.random_range(0..10) {
        0 => Src::Null,
        1 | 2 => Src::Integer(INTS[rng.random_range(0..INTS.len())]),
        3 => Src::Integer(rng.random()),
        4 => Src::Real([0.0, -1.5, 1e300, f64::MIN_POSITIVE, f64::INFINITY][rng.random_range(0..5)]),
        5..=7 => Src::Text(TEXTS[rng.random_range(0..TEXTS.len())].into()),
        8 => {
            let digits: String = (0..rng.random_range(1..20)).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
            let cut = rng.random_range(0..=digits.len());
            let sign = ["", "-", "+"][rng.random_range(0..3)];
            Src::Text(format!("{sign}{}.{}", &digits[..cut], &digits[cut..]))
        }
        _ => Src::Blob((0..rng.random_range(0..4)).map(|_| rng.random()).collect()),
    }
}

/// The reference decimal parse: by strings, not arithmetic.
fn ref_decimal(text: &str, precision: usize, scale: usize) -> Option<i128> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits_only(int) || !digits_only(frac) || frac.len() > scale {
        return None;
    }
    let all = format!("{int}{frac}{}", "0".repeat(scale - frac.len()));
    let significant = all.trim_start_matches('0');
    if significant.len() > precision {
        return None;
    }
    let v: i128 = if significant.is_empty() { 0 } else { significant.parse().unwrap() };
    Some(if neg { -v } else { v })
}

fn decimal(v: i128) -> Value {
    Value::Decimal(v.to_be_bytes().into())
}

/// What field type `t` makes of `cell`, or `None` when it does not fit.
fn reference(t: usize, cell: &Src) -> Option<Value> {
    let dec = |p: usize, s: usize| match cell {
        Src::Text(x) => ref_decimal(x, p, s).map(decimal),
        Src::Integer(n) => {
            let v = (*n as i128).checked_mul(10i128.pow(s as u32))?;
            (v.unsigned_abs() < 10u128.pow(p as u32)).then(|| decimal(v))
        }
        _ => None,
    };
    match (t, cell) {
        (0, Src::Text(x)) => Some(Value::String(x.clone())),
        (1, Src::Integer(n)) => Some(Value::Long(*n)),
        (2, Src::Integer(n)) => i32::try_from(*n).ok().map(Value::Int),
        (3, Src::Integer(n @ (0 | 1))) => Some(Value::Boolean(*n == 1)),
        (4, Src::Real(r)) => Some(Value::Double(*r)),
        (4, Src::Integer(n)) => Some(Value::Double(*n as f64)),
        (5, Src::Integer(n)) => (MIN_MICROS..=MAX_MICROS).contains(n).then_some(Value::TimestampMicros(*n)),
        (6, _) => dec(14, 2),
        (7, _) => dec(9, 6),
        (8, _) => dec(38, 10),
        (9, _) => dec(3, 0),
        _ => None,
    }
}

fn check_rows(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let fields: Vec<(usize, bool)> = (0..rng.random_range(1..6)).map(|_| (rng.random_range(0..TYPES.len()), rng.random())).collect();
    let extra = rng.random_range(0..2);
    let schema = schema_of(&fields);
    let columns: Vec<String> = (0..fields.len() + extra).map(|i| format!("c{i}")).collect();
    let mut encoder = CopyPlan::new(&schema, "t", &columns, Some("c0")).unwrap().encoder(1 << 16);
    for _ in 0..40 {
        let cells: Vec<Src> = (0..fields.len() + extra).map(|_| cell(&mut rng)).collect();
        let mut b = RowBatchBuilder::with_capacity(256);
        cells.iter().for_each(|c| push(&mut b, c));
        b.end_row();
        let data = b.finish().data;
        let expected: Vec<Option<Value>> = fields
            .iter()
            .zip(&cells)
            .map(|(&(t, nullable), c)| match c {
                Src::Null if nullable => Some(Value::Union(0, Box::new(Value::Null))),
                c if nullable => reference(t, c).map(|v| Value::Union(1, Box::new(v))),
                c => reference(t, c),
            })
            .collect();
        let got = encoder.row_batch(&data, 1);
        match expected.iter().position(Option::is_none) {
            Some(field) => {
                let e = got.expect_err("a value that does not fit was copied");
                assert!(e.contains(&format!("column `c{field}`")) && e.ends_with(&format!("(field `f{field}`)")), "{fields:?} {cells:?}: {e}");
                // The encoder is spent after a refusal; the export stops there.
                encoder = CopyPlan::new(&schema, "t", &columns, Some("c0")).unwrap().encoder(1 << 16);
            }
            None => {
                got.unwrap();
                let batch = encoder.take();
                let out = batch.data;
                assert_eq!((batch.count, batch.ends.clone()), (1, vec![out.len() as u32]));
                assert_eq!(validate_batch(&schema, 1, &out), Ok(batch.ends));
                let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema.avro).build().unwrap();
                let mut bytes = &out[..];
                let Value::Record(decoded) = reader.read_value(&mut bytes).unwrap() else { panic!("not a record") };
                assert!(bytes.is_empty(), "apache-avro left {} bytes", bytes.len());
                let decoded: Vec<Value> = decoded.into_iter().map(|(_, v)| v).collect();
                let expected: Vec<Value> = expected.into_iter().map(Option::unwrap).collect();
                assert_eq!(decoded, expected, "{fields:?} {cells:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn rows_copy_as_the_reference_converts_them(seed: u64) {
        check_rows(seed);
    }
}

/// A one-field record from `cell`, or the message refusing it.
fn copy_one(ty: &str, cell: Src) -> Result<Vec<u8>, String> {
    let schema = RecordSchema::parse(&format!(r#"{{"type":"record","name":"r","fields":[{{"name":"f","type":{ty}}}]}}"#)).unwrap();
    let mut encoder = CopyPlan::new(&schema, "t", &["c".to_string()], None).unwrap().encoder(64);
    push(&mut encoder, &cell);
    encoder.end_row()?;
    Ok(encoder.take().data)
}

#[test]
fn misfits_say_what_the_value_is_and_what_the_field_wants() {
    let why = |ty: &str, cell: Src| {
        let e = copy_one(ty, cell).unwrap_err();
        e.strip_prefix("table `t` column `c`: ").and_then(|e| e.strip_suffix(" (field `f`)")).unwrap_or_else(|| panic!("{e}")).to_string()
    };
    assert_eq!(why(TYPES[2], Src::Text("high".into())), r#"text "high" does not fit int (32-bit)"#);
    assert_eq!(why(TYPES[2], Src::Integer(1 << 32)), "integer 4294967296 does not fit int (32-bit)");
    assert_eq!(why(TYPES[3], Src::Null), "NULL but the field is not nullable");
    assert_eq!(
        why(TYPES[5], Src::Integer(MAX_MICROS + 1)),
        "integer 253402300800000000 is not a timestamp between years 1 and 9999 (microseconds since 1970)"
    );
    assert_eq!(why(TYPES[6], Src::Text("1.234".into())), r#"text "1.234" does not fit decimal(14,2)"#);
    assert_eq!(why(TYPES[0], Src::Blob(vec![0xff, 0xfe])), "blob of 2 bytes does not fit string");
    assert_eq!(why(TYPES[1], Src::Text("x".repeat(50))), format!("text {:?}... does not fit long", "x".repeat(40)));
}

#[test]
fn decimals_take_the_fewest_bytes() {
    let ty = TYPES[9];
    for (v, bytes) in [(0, vec![0]), (-1, vec![0xff]), (127, vec![0x7f]), (128, vec![0x00, 0x80]), (-128, vec![0x80]), (-129, vec![0xff, 0x7f])] {
        let mut expected = vec![(bytes.len() * 2) as u8];
        expected.extend(&bytes);
        assert_eq!(copy_one(ty, Src::Integer(v)), Ok(expected), "{v}");
    }
}

#[test]
fn plans_refuse_fields_a_column_cannot_fill() {
    let schema = |f: &str| RecordSchema::parse(&format!(r#"{{"type":"record","name":"r","fields":[{{"name":"f","type":{f}}}]}}"#)).unwrap();
    for ty in [r#"{"type":"array","items":"long"}"#, r#"["long","null"]"#, r#"["null","long","string"]"#, r#""float""#, r#""bytes""#] {
        let e = CopyPlan::new(&schema(ty), "t", &["c".to_string()], None).unwrap_err();
        assert!(matches!(&e, PlanError::Unsupported { field, .. } if field == "f"), "{ty}: {e}");
        assert!(e.to_string().contains("emit"), "{e}");
    }
    let plan = |ty: &str, columns: &[&str], key: Option<&str>| {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        CopyPlan::new(&schema(ty), "t", &columns, key).map(drop)
    };
    assert_eq!(plan(r#""float""#, &["c"], None), Err(PlanError::Unsupported { field: "f".into(), what: "float".into() }));
    assert_eq!(plan(TYPES[0], &[], None), Err(PlanError::TooFewColumns { fields: 1, columns: 0 }));
    assert_eq!(plan(TYPES[0], &["c"], Some("id")), Err(PlanError::Key("id".into())));
    assert_eq!(plan(TYPES[0], &["c", "id"], Some("id")), Ok(()));
}

#[test]
fn a_refused_row_is_named_by_its_key() {
    let schema = RecordSchema::parse(r#"{"type":"record","name":"r","fields":[{"name":"n","type":"int"},{"name":"id","type":"string"}]}"#).unwrap();
    let columns = ["amount".to_string(), "guid".to_string(), "num".to_string()];
    for (key, expected) in [("guid", r#" row "USR-1""#), ("num", " row 7")] {
        let mut encoder = CopyPlan::new(&schema, "users", &columns, Some(key)).unwrap().encoder(64);
        // A good row first: the message must name the bad row, not an earlier one.
        for cell in [Src::Integer(1), Src::Text("USR-0".into()), Src::Integer(6)] {
            push(&mut encoder, &cell);
        }
        encoder.end_row().unwrap();
        for cell in [Src::Text("x".into()), Src::Text("USR-1".into()), Src::Integer(7)] {
            push(&mut encoder, &cell);
        }
        assert_eq!(
            encoder.end_row().unwrap_err(),
            format!(r#"table `users`{expected} column `amount`: text "x" does not fit int (32-bit) (field `n`)"#)
        );
    }
}
