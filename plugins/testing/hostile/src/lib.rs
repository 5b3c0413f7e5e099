//! A plugin that misbehaves on purpose, in the way its `mode` option names. It implements
//! the raw `Guest` trait (not the kit's `Resource`) so it can lie about what it emitted.
//! It declares `users.guid` and one string field, `guid`.
//!
//! Modes: `loop`, `memory`, `panic`, `trap`, `stack`, `bad-record`, `short-batch`,
//! `count-lie`, `empty`, `file` (option `path`), `network` (option `addr`), `env`,
//! `log-flood`, `stderr-flood`, `giant-batch`, `cursors`. A hostile mode that is not
//! stopped by the host ends by returning success, so a test sees the escape.

use ferry_pdk::bindings::ferry::plugin::types::{Error, ExportRequest, ExportSummary, FieldColumn, ResourceInfo, TableGrant};
use ferry_pdk::bindings::ferry::plugin::{log, records, source};
use ferry_pdk::{Describe, Type};

struct Hostile;

/// One record of the declared schema: `{guid: string}`.
fn record(guid: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut z = ((guid.len() as i64) << 1) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
    out.extend_from_slice(guid.as_bytes());
    out
}

/// Emits `guid` as one record; reports what the host said.
fn emit_one(guid: &str) -> Result<u64, Error> {
    records::emit(1, &record(guid))?;
    Ok(1)
}

fn option<'a>(request: &'a ExportRequest, key: &str) -> Option<&'a str> {
    request.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, buf: &mut [u8; 64]) -> u64 {
    buf[(depth % 64) as usize] = depth as u8;
    let mut local = [0u8; 64];
    local.copy_from_slice(buf);
    std::hint::black_box(&mut local);
    recurse(depth + 1, &mut local) + local[0] as u64
}

impl ferry_pdk::bindings::Guest for Hostile {
    fn describe() -> ResourceInfo {
        let d = Describe::new("hostile", "0.0.1").table("users").field("guid", Type::String);
        ResourceInfo {
            name: "hostile".into(),
            version: "0.0.1".into(),
            description: "misbehaves on purpose".into(),
            schema: d.avro_schema(),
            tables: vec![TableGrant { table: "users".into(), columns: vec!["guid".into()] }],
            window_column: None,
            main_table: "users".into(),
            created_column: None,
            key: None,
            references: Vec::new(),
            copied: vec![FieldColumn { field: "guid".into(), column: "guid".into() }],
        }
    }

    fn export(request: ExportRequest) -> Result<ExportSummary, Error> {
        let mode = option(&request, "mode").unwrap_or("").to_string();
        let records = match mode.as_str() {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![0xa5; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile plugin panics on purpose (mode = panic)"),
            "trap" => core::arch::wasm32::unreachable(),
            "stack" => recurse(0, &mut [0; 64]),
            "bad-record" => {
                // Not a string datum: a length of -1. The host refuses it; the plugin
                // swallows the refusal and claims success.
                let _ = records::emit(1, &[0x01]);
                1
            }
            "short-batch" => {
                // Says 3 records, carries 1.
                let _ = records::emit(3, &record("only-one"));
                3
            }
            "count-lie" => {
                emit_one("the-only-record")?;
                1000
            }
            "empty" => 0,
            "file" => {
                let path = option(&request, "path").unwrap_or("/etc/passwd");
                match std::fs::read(path) {
                    Ok(bytes) => emit_one(&format!("read {} bytes of {path}", bytes.len()))?,
                    Err(e) => return Err(Error::Other(format!("cannot open {path}: {e}"))),
                }
            }
            "network" => {
                let addr = option(&request, "addr").unwrap_or("127.0.0.1:9");
                let lookup = std::net::ToSocketAddrs::to_socket_addrs("localhost:80").map(|a| a.count());
                match std::net::TcpStream::connect(addr) {
                    Ok(_) => emit_one(&format!("connected to {addr}"))?,
                    Err(e) => {
                        return Err(Error::Other(format!("cannot connect to {addr}: {e}; name lookup: {lookup:?}")));
                    }
                }
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                let args: Vec<String> = std::env::args().collect();
                let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|e| format!("none ({e})"));
                let root = std::fs::read_dir("/").map(|d| d.count().to_string()).unwrap_or_else(|e| format!("unreadable ({e})"));
                return Err(Error::Other(format!(
                    "saw {} environment variables {vars:?}, {} arguments {args:?}, working directory {cwd}, root directory {root}",
                    vars.len(),
                    args.len()
                )));
            }
            "log-flood" => {
                let line = "x".repeat(1024);
                for _ in 0..100_000 {
                    log::log(log::Level::Info, &line);
                }
                // One message far over the per-line cut.
                log::log(log::Level::Error, &"y".repeat(8 << 20));
                emit_one("survived-the-flood")?
            }
            "stderr-flood" => {
                let line = "z".repeat(1023);
                for _ in 0..4096 {
                    eprintln!("{line}");
                }
                emit_one("survived-the-stderr-flood")?
            }
            "giant-batch" => {
                let mut batch = record("giant");
                batch.resize(17 << 20, 0);
                let _ = records::emit(1, &batch);
                1
            }
            "cursors" => {
                let req = source::TableRequest { table: "users".into(), columns: vec!["guid".into()], range: None, order_by: None };
                let mut open = Vec::new();
                loop {
                    match source::open(&req) {
                        Ok(c) => open.push(c),
                        Err(e) => return Err(e),
                    }
                    if open.len() > 10_000 {
                        break;
                    }
                }
                0
            }
            other => return Err(Error::InvalidArgument(format!("unknown mode {other:?}"))),
        };
        Ok(ExportSummary { records })
    }
}

ferry_pdk::bindings::__export_world!(Hostile with_types_in ferry_pdk::bindings);
