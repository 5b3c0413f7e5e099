//! The wasmtime host: compiles (and caches) plugins, runs each in its own store under
//! its limits, and turns traps into errors that name the plugin and the cause.
//!
//! This module knows nothing of output formats, gzip or tar: records leave through a
//! [`RecordSink`] the caller provides.

mod bindings;
mod blobs;
mod cache;
mod crash;
mod declaration;
mod host;
mod limits;
mod load;
mod state;
mod v0_1;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

pub use bindings::{ExportRequest, FieldColumn, Range, Reference, ResourceInfo};
pub use blobs::{AttachmentFailure, AttachmentSink, AttachmentVersion, Stored};
pub use cache::default_dir as default_cache_dir;
pub use limits::Limits;
pub use load::{LoadError, StartError};
pub use state::{Grants, HostTimings};

use crate::records::{RecordSchema, SchemaError};
use crate::source::{RowStream, Source, SourceError, TableQuery};
use state::{Fault, HostState};

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The plugins compiled into this binary, by resource name.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, wasm)| *wasm)
}

/// Names of the built-in plugins.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Where plugin logs and progress go (the CLI prints them).
pub trait Events: Send + Sync {
    fn log(&self, resource: &str, level: Level, message: &str);
    fn progress(&self, resource: &str, done: u64, total: Option<u64>);
}

/// Where validated record batches go.
pub trait RecordSink: Send {
    /// `ends[i]` is where record `i` ends within `datums`.
    fn write(&mut self, count: u32, datums: Vec<u8>, ends: Vec<u32>) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// Where a plugin came from, as messages and the manifest name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    Builtin(String),
    Path(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin(name) => write!(f, "`{name}`"),
            Origin::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A compiled plugin and what it declared. Clones share the compiled code and the
/// parsed schema.
#[derive(Clone)]
pub struct Plugin {
    pub origin: Origin,
    pub sha256: String,
    pub info: ResourceInfo,
    pub schema: Arc<RecordSchema>,
    pub grants: Arc<Grants>,
    /// The plugin imports `ferry:plugin/blobs`: it exports attachments, and its
    /// records are their index.
    pub uses_blobs: bool,
    /// The contract version the component was built against.
    pub contract: Contract,
    pre: Pre,
}

/// The `ferry:plugin` version a component speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `ferry:plugin@0.1.0` (`wit/v0.1.0/ferry.wit`).
    V0_1,
    /// `ferry:plugin@0.2.0` (`wit/ferry.wit`).
    V0_2,
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Contract::V0_1 => "ferry:plugin@0.1.0",
            Contract::V0_2 => "ferry:plugin@0.2.0",
        })
    }
}

/// A component linked and type-checked against one contract version.
#[derive(Clone)]
enum Pre {
    V0_1(bindings::v0_1::ResourcePluginPre<HostState>),
    V0_2(bindings::ResourcePluginPre<HostState>),
}

/// An instantiated plugin of either version.
enum Instance {
    V0_1(bindings::v0_1::ResourcePlugin),
    V0_2(bindings::ResourcePlugin),
}

impl Pre {
    /// Type-checks the component's exports against 0.2.0, then 0.1.0.
    fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        match bindings::ResourcePluginPre::new(pre.clone()) {
            Ok(p) => Ok(Pre::V0_2(p)),
            Err(v2) => bindings::v0_1::ResourcePluginPre::new(pre).map(Pre::V0_1).map_err(|_| v2),
        }
    }

    fn contract(&self) -> Contract {
        match self {
            Pre::V0_1(_) => Contract::V0_1,
            Pre::V0_2(_) => Contract::V0_2,
        }
    }

    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_1(p) => Instance::V0_1(p.instantiate(store)?),
            Pre::V0_2(p) => Instance::V0_2(p.instantiate(store)?),
        })
    }
}

impl Instance {
    fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<ResourceInfo> {
        match self {
            Instance::V0_1(i) => i.call_describe(store).map(v0_1::resource_info),
            Instance::V0_2(i) => i.call_describe(store),
        }
    }

    fn export(&self, store: &mut Store<HostState>, request: &ExportRequest) -> wasmtime::Result<Result<u64, bindings::Error>> {
        match self {
            Instance::V0_1(i) => {
                Ok(i.call_export(store, &v0_1::export_request(request))?.map(|s| s.records).map_err(|e| v0_1::wit_error(&e)))
            }
            Instance::V0_2(i) => Ok(i.call_export(store, request)?.map(|s| s.records)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {origin} is not a WebAssembly component ({reason}); build plugins with `cargo build --release --target wasm32-wasip2`")]
    NotAComponent { origin: Origin, reason: String },
    #[error(
        "plugin {origin} cannot be started: {reason}; it may import an interface ferry does not offer (ferry speaks ferry:plugin@0.1.0 and @0.2.0, and wasi p2)"
    )]
    Instantiate { origin: Origin, reason: String },
    #[error("plugin {origin} declares an unusable schema: {source}")]
    Schema { origin: Origin, source: SchemaError },
    #[error("plugin {origin} declares {what}; names are letters, digits and _")]
    BadDeclaration { origin: Origin, what: String },
    #[error("plugin {origin} declares an inconsistent resource: {what}; fix its describe()")]
    Inconsistent { origin: Origin, what: String },
    #[error(
        "plugin `{plugin}` ran past its time limit of {limit:?} and was stopped; raise `time_limit` on the resource if it really needs longer"
    )]
    TimeLimit { plugin: String, limit: Duration },
    #[error(
        "plugin `{plugin}` hit its memory cap of {cap} MiB (it asked for {asked} MiB) and was stopped; raise `memory_limit` on the resource if it really needs more"
    )]
    MemoryLimit { plugin: String, cap: u64, asked: u64 },
    #[error("plugin `{plugin}` crashed: {message}{detail}")]
    Trap { plugin: String, message: String, detail: String },
    /// The plugin's export returned an error: the WIT variant as sent, so callers can
    /// tell a denied table from bad data without parsing text.
    #[error("plugin `{plugin}` failed: {}", wit_error(error))]
    Reported { plugin: String, error: bindings::Error },
    #[error("plugin `{plugin}` sent records that do not match its declared schema: {error}")]
    BadBatch { plugin: String, error: crate::records::BatchError },
    #[error("plugin `{plugin}` sent a batch of {bytes} bytes, over the limit of {limit} bytes")]
    BatchTooLarge { plugin: String, bytes: usize, limit: usize },
    #[error("plugin `{plugin}` says it exported {reported} records but sent {received}; nothing it sent is trusted")]
    CountMismatch { plugin: String, reported: u64, received: u64 },
    #[error("writing the records of `{plugin}` failed: {reason}")]
    Output { plugin: String, reason: String },
    #[error("plugin `{plugin}` broke the plugin contract and was stopped: {what}")]
    Contract { plugin: String, what: String },
    /// A blob was missing or corrupt; `message` names the attachment's uid and sid.
    #[error("{message}")]
    Attachment { plugin: String, message: String },
}

impl PluginError {
    /// The short kind, for the manifest and for scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::NotAComponent { .. } => "not-a-component",
            PluginError::Instantiate { .. } => "instantiate",
            PluginError::Schema { .. } | PluginError::BadDeclaration { .. } | PluginError::Inconsistent { .. } => "bad-declaration",
            PluginError::TimeLimit { .. } => "time-limit",
            PluginError::MemoryLimit { .. } => "memory-limit",
            PluginError::Trap { .. } => "trap",
            PluginError::Reported { .. } => "reported",
            PluginError::BadBatch { .. } | PluginError::BatchTooLarge { .. } => "bad-batch",
            PluginError::CountMismatch { .. } => "count-mismatch",
            PluginError::Output { .. } => "output",
            PluginError::Contract { .. } => "contract",
            PluginError::Attachment { .. } => "attachment",
        }
    }
}

/// How one export went.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    pub records: u64,
    /// Wall time inside the plugin's export call (host calls included).
    pub elapsed: Duration,
    /// The host calls' share of `elapsed`; the rest is the plugin's own work.
    pub host: HostTimings,
    pub log_dropped: u64,
    /// The plugin instance's linear memory at its peak, in bytes (all its memories).
    pub memory_peak: u64,
}

/// Everything an export needs besides the plugin.
pub struct ExportJob {
    /// The resource's name in the job (messages use it).
    pub resource: String,
    /// A sharded run's slice of the main table: `(creation column, start, end)`, added
    /// to every read and count of it like the as-of cut.
    pub slice: Option<(String, Option<i64>, Option<i64>)>,
    pub request: ExportRequest,
    pub source: Arc<dyn Source>,
    pub sink: Box<dyn RecordSink>,
    pub events: Arc<dyn Events>,
    pub limits: Limits,
}

/// The engine, the linker and the epoch ticker every store shares.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    stop_ticker: Arc<AtomicBool>,
    /// Components already compiled in this process, by sha256: a job that names the
    /// same plugin for many resources holds its code once.
    components: std::sync::Mutex<std::collections::HashMap<String, Component>>,
    /// Plugins already described, by origin: `describe` takes no input, so a plugin
    /// named by many resources is described once and its schema parsed once.
    described: std::sync::Mutex<std::collections::HashMap<Origin, Plugin>>,
}

/// Epoch ticks per second: a time limit is enforced to within 10 ms.
const TICKS_PER_SECOND: u64 = 100;
/// `describe` only builds a value; it gets a short leash.
const DESCRIBE_TIME: Duration = Duration::from_secs(10);

impl Runtime {
    pub fn new(cache_dir: Option<PathBuf>) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true).wasm_backtrace_max_frames(std::num::NonZeroUsize::new(20));
        // `FERRY_PERFMAP=1`: write /tmp/perf-<pid>.map so `perf record` names the plugins'
        // compiled functions (profiling only; no effect on the code or the cache).
        if std::env::var_os("FERRY_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        bindings::ResourcePlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        bindings::v0_1::ResourcePlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new().name("ferry-epoch".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                ticker_engine.increment_epoch();
            }
        })?;
        Ok(Runtime { engine, linker, cache_dir, stop_ticker, components: Default::default(), described: Default::default() })
    }

    /// Compiles (or loads from the cache) a plugin and asks it to describe itself.
    pub fn load(&self, origin: Origin, wasm: &[u8]) -> Result<Plugin, PluginError> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        let component =
            self.component(&sha256, wasm).map_err(|e| PluginError::NotAComponent { origin: origin.clone(), reason: root_cause(&e) })?;
        let plugin_name = origin.to_string();
        let limits = Limits { time: DESCRIBE_TIME, ..Limits::default() };
        let mut store =
            self.store(HostState::new(&plugin_name, Arc::new(Grants::new()), Arc::new(NoSource), None, None, Arc::new(NoEvents), limits));
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(Pre::new)
            .map_err(|e| PluginError::Instantiate { origin: origin.clone(), reason: root_cause(&e) })?;
        let instance =
            pre.instantiate(&mut store).map_err(|e| PluginError::Instantiate { origin: origin.clone(), reason: root_cause(&e) })?;
        let info = match instance.describe(&mut store) {
            Ok(info) => info,
            Err(e) => return Err(classify(&plugin_name, e, store.into_data(), limits)),
        };
        let schema = RecordSchema::parse(&info.schema).map_err(|source| PluginError::Schema { origin: origin.clone(), source })?;
        if pre.contract() == Contract::V0_2 {
            declaration::check(&info, &schema).map_err(|what| PluginError::Inconsistent { origin: origin.clone(), what })?;
        }
        let mut grants = Grants::new();
        for grant in &info.tables {
            for name in std::iter::once(&grant.table).chain(&grant.columns) {
                if crate::source::quote_ident(name).is_err() {
                    return Err(PluginError::BadDeclaration { origin, what: format!("a source table or column named {name:?}") });
                }
            }
            grants.entry(grant.table.clone()).or_default().extend(grant.columns.iter().cloned());
        }
        let uses_blobs = component.component_type().imports(&self.engine).any(|(name, _)| name.starts_with("ferry:plugin/blobs"));
        let contract = pre.contract();
        Ok(Plugin { origin, sha256, info, schema: Arc::new(schema), grants: Arc::new(grants), uses_blobs, contract, pre })
    }

    fn component(&self, sha256: &str, wasm: &[u8]) -> wasmtime::Result<Component> {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(component) = components.get(sha256) {
            return Ok(component.clone());
        }
        let component = cache::load(&self.engine, self.cache_dir.as_deref(), sha256, wasm)?;
        components.insert(sha256.to_string(), component.clone());
        Ok(component)
    }

    /// Runs one export in a fresh store.
    pub fn export(&self, plugin: &Plugin, job: ExportJob) -> Result<ExportOutcome, PluginError> {
        self.export_with(plugin, job, None)
    }

    /// Runs one export whose plugin may store attachments through `attachments`.
    pub fn export_with(
        &self,
        plugin: &Plugin,
        job: ExportJob,
        attachments: Option<Box<dyn AttachmentSink>>,
    ) -> Result<ExportOutcome, PluginError> {
        let ExportJob { resource, slice, request, source, sink, events, limits } = job;
        let mut state = HostState::new(&resource, plugin.grants.clone(), source, Some(plugin.schema.clone()), Some(sink), events, limits);
        state.attachments = attachments;
        state.main = Some(state::MainTable { slice, ..state::MainTable::new(plugin, request.as_of) });
        let mut store = self.store(state);
        let started = Instant::now();
        let instance = match plugin.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            // A cap below the plugin's initial memory fails before any code runs: say so,
            // rather than suggest an interface is missing.
            Err(_) if store.data().limiter.hit.is_some() => {
                let asked = store.data().limiter.hit.unwrap_or(0);
                return Err(PluginError::MemoryLimit { plugin: resource, cap: limits.memory_bytes >> 20, asked: asked.div_ceil(1 << 20) });
            }
            Err(e) => return Err(PluginError::Instantiate { origin: plugin.origin.clone(), reason: root_cause(&e) }),
        };
        let result = instance.export(&mut store, &request);
        let elapsed = started.elapsed();
        let state = store.into_data();
        let summary = match result {
            Err(trap) => return Err(classify(&resource, trap, state, limits)),
            Ok(reported) => reported,
        };
        if let Some(fault) = state.fault {
            return Err(fault_error(&resource, fault, limits));
        }
        match summary {
            Err(error) => Err(PluginError::Reported { plugin: resource, error }),
            Ok(records) if records != state.records => {
                Err(PluginError::CountMismatch { plugin: resource, reported: records, received: state.records })
            }
            Ok(_) => Ok(ExportOutcome {
                records: state.records,
                elapsed,
                host: state.timings,
                log_dropped: state.log_dropped,
                memory_peak: state.limiter.linear_bytes,
            }),
        }
    }

    fn store(&self, state: HostState) -> Store<HostState> {
        let ticks = (state.limits.time.as_millis() as u64 * TICKS_PER_SECOND).div_ceil(1000).max(1);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl HostState {
    fn new(
        resource: &str,
        grants: Arc<Grants>,
        source: Arc<dyn Source>,
        schema: Option<Arc<RecordSchema>>,
        sink: Option<Box<dyn RecordSink>>,
        events: Arc<dyn Events>,
        limits: Limits,
    ) -> Self {
        // No files, no environment, no arguments, no sockets: stderr (panic messages)
        // is kept, bounded, for the error report.
        let stderr = MemoryOutputPipe::new(crash::STDERR_BYTES);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).allow_tcp(false).allow_udp(false).build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: limits::MemoryLimiter::new(limits.memory_bytes),
            limits,
            resource: resource.into(),
            grants,
            source,
            schema,
            sink,
            events,
            records: 0,
            timings: Default::default(),
            fault: None,
            log_used: 0,
            log_dropped: 0,
            open_cursors: 0,
            stderr,
            attachments: None,
            main: None,
            started: Instant::now(),
        }
    }
}

fn wit_error(e: &bindings::Error) -> String {
    use bindings::Error as E;
    match e {
        E::Denied(m) => format!("denied: {m}"),
        E::NotFound(m) => format!("not found: {m}"),
        E::InvalidArgument(m) => format!("invalid argument: {m}"),
        E::BadData(m) => format!("bad data: {m}"),
        E::LimitExceeded(m) => format!("limit exceeded: {m}"),
        E::Other(m) => m.clone(),
    }
}

fn fault_error(plugin: &str, fault: Fault, limits: Limits) -> PluginError {
    let plugin = plugin.to_string();
    match fault {
        Fault::BadBatch(error) => PluginError::BadBatch { plugin, error },
        Fault::BatchTooLarge { bytes, limit } => PluginError::BatchTooLarge { plugin, bytes, limit },
        Fault::Sink(reason) => PluginError::Output { plugin, reason },
        Fault::Contract(what) => PluginError::Contract { plugin, what },
        Fault::Attachment(message) => PluginError::Attachment { plugin, message },
        Fault::TimeLimit => PluginError::TimeLimit { plugin, limit: limits.time },
    }
}

/// Names the first cause of a failed call: a host fault, the memory cap, the time
/// limit, or a trap with the plugin's panic message and a short backtrace.
fn classify(plugin: &str, e: wasmtime::Error, state: HostState, limits: Limits) -> PluginError {
    if let Some(fault) = state.fault {
        return fault_error(plugin, fault, limits);
    }
    if let Some(asked) = state.limiter.hit {
        return PluginError::MemoryLimit { plugin: plugin.into(), cap: limits.memory_bytes >> 20, asked: asked.div_ceil(1 << 20) };
    }
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return PluginError::TimeLimit { plugin: plugin.into(), limit: limits.time };
    }
    let (message, detail) = crash::describe(&e, &state.stderr.contents());
    PluginError::Trap { plugin: plugin.into(), message, detail }
}

/// The innermost cause, on one line and short: some causes (a file that is not a
/// component) are a multi-line dump of the bytes read.
fn root_cause(e: &wasmtime::Error) -> String {
    let cause = e.chain().last().map(|c| c.to_string()).unwrap_or_else(|| e.to_string());
    let mut line = cause.lines().next().unwrap_or_default().trim();
    // A dump cut at its first line ("bad magic number - expected=[") says nothing more.
    if line.ends_with(['[', '{', '(']) {
        line = line.rsplit_once(" - ").map_or(line, |(head, _)| head);
    }
    if line.chars().count() > 160 { format!("{}...", line.chars().take(160).collect::<String>()) } else { line.to_string() }
}

/// The source a `describe` call sees: nothing.
struct NoSource;

impl Source for NoSource {
    fn columns(&self, _: &str) -> Result<Option<Vec<String>>, SourceError> {
        Ok(None)
    }
    fn count(&self, q: &TableQuery) -> Result<u64, SourceError> {
        Err(SourceError::ReaderGone { table: q.table.into() })
    }
    fn open(&self, q: &TableQuery) -> Result<Box<dyn RowStream>, SourceError> {
        Err(SourceError::ReaderGone { table: q.table.into() })
    }
    fn sample_sorted(&self, q: &TableQuery, _: &str, _: u64) -> Result<Vec<i64>, SourceError> {
        Err(SourceError::ReaderGone { table: q.table.into() })
    }
}

struct NoEvents;

impl Events for NoEvents {
    fn log(&self, _: &str, _: Level, _: &str) {}
    fn progress(&self, _: &str, _: u64, _: Option<u64>) {}
}

impl From<&crate::window::Window> for Range {
    fn from(w: &crate::window::Window) -> Self {
        Range { column: w.column.clone(), start: w.bounds.start, end: Some(w.bounds.end) }
    }
}
