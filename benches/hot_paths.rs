//! Criterion benches for ferry's hot paths: batch validation, encoding per format,
//! compression, tar writing, and records through a real plugin.
//! `cargo bench --bench hot_paths` (figures in target/criterion/).

use std::io::Write;
use std::sync::Arc;

use apache_avro::types::Value;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use ferry::formats::{FileFormat, Format};
use ferry::package::par_gzip::ParGzip;
use ferry::records::{RecordSchema, validate_batch};

/// A transactions-shaped schema and 4,096 records encoded by apache-avro (not ferry).
fn batch() -> (Arc<RecordSchema>, Vec<u8>, u32) {
    let schema = RecordSchema::parse(
        r#"{"type":"record","name":"transactions","fields":[
            {"name":"guid","type":"string"},{"name":"id","type":["null","string"],"default":null},
            {"name":"account_guid","type":"string"},{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":14,"scale":2}},
            {"name":"type","type":"string"},{"name":"category","type":["null","string"],"default":null},
            {"name":"is_expense","type":"boolean"},{"name":"merchant_category_code","type":["null","int"],"default":null},
            {"name":"transacted_at","type":{"type":"long","logicalType":"timestamp-micros"}},
            {"name":"posted_at","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null}]}"#,
    )
    .unwrap();
    let mut data = Vec::new();
    let n = 4096u32;
    for i in 0..n as i64 {
        let v = Value::Record(vec![
            ("guid".into(), Value::String(format!("TRN-{:032x}", i * 7919))),
            ("id".into(), Value::Union(1, Box::new(Value::String(format!("partner-txn-{i}"))))),
            ("account_guid".into(), Value::String(format!("ACT-{:032x}", i / 25))),
            ("amount".into(), Value::Decimal(apache_avro::Decimal::from(((i * 1234) % 99999 + 1).to_be_bytes().to_vec()))),
            ("type".into(), Value::String(if i % 7 == 0 { "CREDIT" } else { "DEBIT" }.into())),
            ("category".into(), Value::Union(1, Box::new(Value::String("Groceries".into())))),
            ("is_expense".into(), Value::Boolean(i % 7 != 0)),
            ("merchant_category_code".into(), Value::Union(1, Box::new(Value::Int(5411)))),
            ("transacted_at".into(), Value::TimestampMicros(1_700_000_000_000_000 + i * 1_000_003)),
            ("posted_at".into(), Value::Union(0, Box::new(Value::Null))),
        ]);
        #[allow(deprecated)]
        data.extend(apache_avro::to_avro_datum(&schema.avro, v).unwrap());
    }
    (Arc::new(schema), data, n)
}

fn validation(c: &mut Criterion) {
    let (schema, data, n) = batch();
    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("transactions batch", |b| b.iter(|| validate_batch(&schema, n, &data).unwrap()));
    g.finish();
}

fn encoding(c: &mut Criterion) {
    let (schema, data, n) = batch();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(n as u64));
    let ends = validate_batch(&schema, n, &data).unwrap();
    for format in [Format::Avro, Format::Csv, Format::Jsonl] {
        let ff = FileFormat { format, schema: schema.clone(), codec: apache_avro::Codec::Null, marker: [7; 16] };
        g.bench_function(format.extension(), |b| {
            b.iter(|| {
                let mut w = ff.start(std::io::sink()).unwrap();
                w.append(&data, &ends, 0).unwrap();
                w.finish().unwrap();
            });
        });
    }
    g.finish();
}

fn compression(c: &mut Criterion) {
    // Avro-encoded records repeated to 16 MiB: compressible like real output.
    let (_, data, _) = batch();
    let input: Vec<u8> = data.iter().copied().cycle().take(16 << 20).collect();
    let mut g = c.benchmark_group("gzip-16MiB");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(10);
    g.bench_function("flate2 one thread", |b| {
        b.iter(|| {
            let mut gz = flate2::write::GzEncoder::new(std::io::sink(), flate2::Compression::default());
            gz.write_all(&input).unwrap();
            gz.finish().unwrap();
        });
    });
    g.bench_function("ferry ParGzip (all cores)", |b| {
        b.iter(|| {
            let mut gz = ParGzip::new(std::io::sink());
            gz.write_all(&input).unwrap();
            gz.finish().unwrap();
        });
    });
    g.finish();
}

fn tar_writing(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let payload = vec![42u8; 1 << 20];
    let mut g = c.benchmark_group("tar");
    g.throughput(Throughput::Bytes(32 << 20));
    g.sample_size(10);
    g.bench_function("pack 32 files of 1 MiB", |b| {
        b.iter(|| {
            let names: Vec<String> = (0..32).map(|i| format!("f{i}.avro.gz")).collect();
            for n in &names {
                std::fs::write(dir.path().join(n), &payload).unwrap();
            }
            let confined = ferry::package::ConfinedDir::open(dir.path()).unwrap();
            let parts = ferry::package::archive::pack(
                &confined,
                &names,
                "tables",
                "2026-03-31-143022",
                8 << 20,
                0,
                &mut ferry::package::archive::PartDir(confined.clone()),
            )
            .unwrap();
            for p in parts {
                std::fs::remove_file(dir.path().join(p.name)).unwrap();
            }
        });
    });
    g.finish();
}

/// Records per second through plugins, with a sink that only counts: the built-in
/// transactions plugin (a column copy, which the host runs: `records.copy`), and the
/// example category-totals plugin, which reads every transaction's row batch into wasm
/// and aggregates (the path of a plugin that computes its records).
fn plugin_boundary(c: &mut Criterion) {
    use ferry::runtime::{Events, ExportJob, ExportRequest, Level, Limits, Origin, RecordSink, Runtime};
    struct Quiet;
    impl Events for Quiet {
        fn log(&self, _: &str, _: Level, _: &str) {}
        fn progress(&self, _: &str, _: u64, _: Option<u64>) {}
    }
    struct Count;
    impl RecordSink for Count {
        fn write(&mut self, _: u32, _: Vec<u8>, _: Vec<u32>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("platform.db");
    let counts = ferry::source::generate_demo(&db, &dir.path().join("blobs"), ferry::source::DemoSpec { seed: 1, scale: 0.5 }).unwrap();
    let source: Arc<dyn ferry::source::Source> = Arc::new(ferry::source::SqliteSource::open(&db).unwrap());
    let runtime = Runtime::new(ferry::runtime::default_cache_dir()).unwrap();
    let plugin = runtime.load(Origin::Builtin("transactions".into()), ferry::runtime::builtin("transactions").unwrap()).unwrap();
    let mut g = c.benchmark_group("plugin");
    g.throughput(Throughput::Elements(counts.transactions));
    g.sample_size(10);
    let job = |resource: &str| ExportJob {
        slice: None,
        resource: resource.into(),
        request: ExportRequest { as_of: i64::MAX / 2, window: None, options: vec![] },
        source: source.clone(),
        sink: Box::new(Count),
        events: Arc::new(Quiet),
        limits: Limits::default(),
    };
    g.bench_function("transactions copied (records.copy)", |b| b.iter(|| runtime.export(&plugin, job("transactions")).unwrap()));
    let totals_wasm = std::path::Path::new(env!("FERRY_PLUGIN_DIR")).join("ferry_example_category_totals.wasm");
    let totals = runtime.load(Origin::Path(totals_wasm.clone()), &std::fs::read(&totals_wasm).unwrap()).unwrap();
    g.bench_function("transaction rows read by a wasm plugin (category totals)", |b| {
        b.iter(|| runtime.export(&totals, job("category_totals")).unwrap());
    });
    g.finish();
}

criterion_group!(benches, validation, encoding, compression, tar_writing, plugin_boundary);
criterion_main!(benches);
