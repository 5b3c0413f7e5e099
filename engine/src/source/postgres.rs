//! PostgreSQL, the production platform database.
//!
//! Like SQLite, each read runs on its own thread with its own connection (taken from a
//! pool, so reads reuse connections and their TLS sessions) and hands ~64 KiB row
//! batches over a channel two deep. Rows come from one binary `COPY (SELECT …) TO STDOUT`
//! inside a read-only repeatable-read transaction (`pg_copy`), streamed: the channel's
//! back-pressure reaches the server through the socket, so neither side holds more than
//! a few batches, whatever the table size. The window goes into the WHERE clause typed
//! like the column, so the planner can walk the column's index for a selective window;
//! a wide one is read in physical order, like SQLite's rowid order.
//!
//! Values go over as the row-batch encoding's five tags, chosen so a plugin cannot tell
//! PostgreSQL from SQLite: booleans are integers 0/1, `timestamptz`/`timestamp` are UTC
//! microseconds since the epoch (integers, like the demo's `_at` columns), `numeric` is
//! its exact decimal text (never a float), `uuid`/`json`/`jsonb` are text, `bytea` a blob.
//! Everything is read in PostgreSQL's binary format and decoded here, so nothing is
//! parsed from locale-dependent text.
//!
//! Every read and count of one source sees the same moment (issue 19): `open` starts a
//! repeatable-read transaction on a holder connection kept open for the source's life
//! and exports its snapshot (`pg_export_snapshot()`); each read's transaction begins with
//! `SET TRANSACTION SNAPSHOT` to it.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use postgres::types::{ToSql, Type};
use postgres::{Client, Config, IsolationLevel};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pg_copy::CopyRows;
use super::row_batch::BATCH_BYTES;
use super::{
    Cells, ChannelStream, Consistency, RecordStream, RowBatchBuilder, RowSink, RowStream, Source, SourceError, TableQuery, quote_ident,
    spawn_pieces,
};
use crate::records::RecordEncoder;

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A connection string whose password never reaches a log, an error or a manifest:
/// `Display` and `Debug` show `postgres://user@host:port/db` only.
#[derive(Clone)]
pub struct PostgresUrl {
    url: String,
    shown: String,
}

impl PostgresUrl {
    /// Parses a `postgres://` URL or a `key=value` connection string.
    pub fn parse(url: &str) -> Result<Self, SourceError> {
        let config = Config::from_str(url).map_err(|e| SourceError::PostgresUrl { reason: e.to_string() })?;
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let shown = format!("postgres://{}@{host}:{port}/{}", config.get_user().unwrap_or(""), config.get_dbname().unwrap_or(""));
        Ok(PostgresUrl { url: url.into(), shown })
    }

    /// The full connection string, password included: only for connecting.
    fn secret(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", self.shown)
    }
}

/// Connects with TLS when the server offers it (`sslmode=prefer`, the default) or
/// demands it (`sslmode=require`); `sslmode=disable` connects in plain text.
pub(crate) fn connect(url: &PostgresUrl) -> Result<Client, SourceError> {
    Client::connect(url.secret(), tls()).map_err(|e| SourceError::Postgres { target: url.to_string(), source: e })
}

fn tls() -> MakeRustlsConnect {
    match MakeRustlsConnect::with_native_certs() {
        Ok((tls, _)) => tls,
        // No system roots (a bare container): TLS still works against servers whose
        // certificate chains to webpki's roots... which we do not ship, so fall back to an
        // empty store: `prefer` then connects in plain text and `require` fails, saying why.
        Err(_) => MakeRustlsConnect::new(
            rustls::ClientConfig::builder().with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth(),
        ),
    }
}

type Manager = r2d2_postgres::PostgresConnectionManager<MakeRustlsConnect>;
type Pooled = r2d2_postgres::r2d2::PooledConnection<Manager>;

/// Connections open at once: a reader per resource running in parallel, plus the short
/// `columns`/`count` calls; a plugin that holds more cursors waits for one to close.
const POOL_SIZE: u32 = 16;

#[derive(Clone)]
pub struct PostgresSource {
    url: PostgresUrl,
    pool: r2d2_postgres::r2d2::Pool<Manager>,
    pin: std::sync::Arc<Pin>,
    /// Pages per piece of a read in physical order ([`PIECE_PAGES`]).
    piece_pages: u32,
}

/// The exported snapshot every read sets, and the connection whose open transaction
/// keeps it alive (an exported snapshot ends with the transaction that exported it).
struct Pin {
    /// `pg_export_snapshot()`'s id, checked to be hex digits and dashes.
    snapshot: String,
    _holder: std::sync::Mutex<Client>,
}

impl Pin {
    fn take(url: &PostgresUrl) -> Result<Self, SourceError> {
        let mut holder = connect(url)?;
        let pg = |e| SourceError::Postgres { target: url.to_string(), source: e };
        holder.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").map_err(pg)?;
        let snapshot: String = holder.query_one("SELECT pg_export_snapshot()", &[]).map_err(pg)?.get(0);
        if snapshot.is_empty() || !snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(SourceError::PgPool {
                target: url.to_string(),
                reason: format!("the server exported a snapshot named {snapshot:?}, which ferry does not trust"),
            });
        }
        Ok(Pin { snapshot, _holder: std::sync::Mutex::new(holder) })
    }

    /// Starts a read-only transaction on the pinned snapshot.
    fn begin<'c>(&self, client: &'c mut Client) -> Result<postgres::Transaction<'c>, postgres::Error> {
        let mut txn = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
        txn.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{}'", self.snapshot))?;
        Ok(txn)
    }
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresSource({})", self.url)
    }
}

/// One column of a table: its name and PostgreSQL type.
struct Column {
    name: String,
    ty: Type,
}

impl PostgresSource {
    /// Connects once to check the server is reachable and the credentials work (an
    /// error then says exactly why); later connections come from the pool.
    pub fn open(url: &PostgresUrl) -> Result<Self, SourceError> {
        let mut client = connect(url)?;
        client.simple_query("SELECT 1").map_err(|e| SourceError::Postgres { target: url.to_string(), source: e })?;
        let config = Config::from_str(url.secret()).map_err(|e| SourceError::PostgresUrl { reason: e.to_string() })?;
        let pool = r2d2_postgres::r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .build_unchecked(Manager::new(config, tls()));
        let pin = std::sync::Arc::new(Pin::take(url)?);
        Ok(PostgresSource { url: url.clone(), pool, pin, piece_pages: piece_pages() })
    }

    /// Cuts reads in physical order into pieces of `pages` pages instead of
    /// [`PIECE_PAGES`]: for tests, whose tables are small.
    pub fn with_piece_pages(mut self, pages: u32) -> Self {
        self.piece_pages = pages.max(1);
        self
    }

    fn client(&self) -> Result<Pooled, SourceError> {
        self.pool.get().map_err(|e| SourceError::PgPool { target: self.url.to_string(), reason: e.to_string() })
    }

    fn table_columns(client: &mut Client, table: &str) -> Result<Option<Vec<Column>>, SourceError> {
        let rows = client
            .query(
                "SELECT a.attname, a.atttypid FROM pg_attribute a
                 WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&table],
            )
            .map_err(|e| SourceError::PgQuery { table: table.into(), source: e })?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.iter()
                .map(|r| {
                    let oid: u32 = r.get(1);
                    Column { name: r.get(0), ty: Type::from_oid(oid).unwrap_or(Type::UNKNOWN) }
                })
                .collect(),
        ))
    }

    /// The SQL of a read or a count, with the bounds as parameters (`Bounds::Params`)
    /// or written in (`Bounds::Inline`: `COPY` takes no parameters). Either way a bound
    /// is typed like the range column (`timestamptz` bounds for a `timestamptz` column)
    /// so the comparison is on the bare column and an index on it applies.
    fn build_sql(&self, client: &mut Client, query: &TableQuery, select: Option<&str>, bounds: Bounds) -> Result<Sql, SourceError> {
        let table = quote_ident(query.table)?;
        let columns = Self::table_columns(client, query.table)?.ok_or_else(|| SourceError::NoTable { table: query.table.into() })?;
        let column = |name: &str| {
            columns.iter().find(|k| k.name == name).ok_or_else(|| SourceError::NoColumn { table: query.table.into(), column: name.into() })
        };
        let mut selected = Vec::new();
        let select = match select {
            Some(s) => s.to_string(),
            None => {
                for c in query.columns {
                    let col = column(c)?;
                    if !supported(&col.ty) {
                        return Err(SourceError::PgType { table: query.table.into(), column: c.clone(), ty: col.ty.name().into() });
                    }
                    selected.push(Column { name: col.name.clone(), ty: col.ty.clone() });
                }
                query.columns.iter().map(|c| quote_ident(c)).collect::<Result<Vec<_>, _>>()?.join(", ")
            }
        };
        let mut sql =
            Sql { head: format!("SELECT {select} FROM {table}"), conds: Vec::new(), params: Vec::new(), selected, window_ty: None };
        let mut conds = Vec::new();
        for range in query.ranges() {
            let col = quote_ident(range.column)?;
            let ty = &column(range.column)?.ty;
            if query.range.as_ref().is_some_and(|r| std::ptr::eq(r, range)) {
                sql.window_ty = Some(ty.clone());
            }
            // Text (or any other type) has no order shared with the window's bounds.
            if !is_time(ty) && ![Type::INT2, Type::INT4, Type::INT8].contains(ty) {
                return Err(SourceError::PgWindowType { table: query.table.into(), column: range.column.into(), ty: ty.name().into() });
            }
            for (bound, op) in [(range.start, ">="), (range.end, "<")] {
                let Some(v) = bound else { continue };
                let value = match bounds {
                    Bounds::Params => sql.param(v, ty),
                    Bounds::Inline => literal(v, ty).ok_or_else(|| SourceError::PgBound {
                        table: query.table.into(),
                        column: range.column.into(),
                        micros: v,
                    })?,
                };
                conds.push(format!("{col} {op} {value}"));
            }
            // A row with no creation time is read (and refused by its field's type if that
            // is not nullable), never dropped unseen.
            if query.keeps_unvalued(range)
                && range.end.is_some()
                && let Some(last) = conds.pop()
            {
                conds.push(format!("({last} OR {col} IS NULL)"));
            }
        }
        sql.conds = conds;
        Ok(sql)
    }

    /// The order rows are read in, the same rule as SQLite's: a plugin's `order_by`
    /// column, or a selective window's column, with ties in physical order (`ctid`);
    /// otherwise physical order itself, which for a table loaded in one pass is
    /// insertion order, the order SQLite's `rowid` gives. Decided on the pinned snapshot.
    fn read_order(&self, client: &mut Client, query: &TableQuery, window_ty: Option<&Type>) -> Result<Order, SourceError> {
        if let Some(col) = query.order_by {
            return Ok(Order::Column(quote_ident(col)?));
        }
        let (Some(range), Some(ty)) = (&query.range, window_ty) else { return Ok(Order::Physical) };
        let (table, col) = (quote_ident(query.table)?, quote_ident(range.column)?);
        // As float microseconds: a plan needs no exact bounds.
        let micros = |agg: &str| {
            let value = format!("(SELECT {agg}({col}) FROM {table})");
            if is_time(ty) { format!("(extract(epoch FROM {value}) * 1000000)::float8") } else { format!("{value}::float8") }
        };
        let pg = |e| SourceError::PgQuery { table: query.table.into(), source: e };
        let mut txn = self.pin.begin(client).map_err(pg)?;
        let row = txn.query_one(&format!("SELECT {}, {}", micros("min"), micros("max")), &[]).map_err(pg)?;
        txn.commit().map_err(pg)?;
        Ok(if super::selective(range, row.get(0), row.get(1)) { Order::Column(col) } else { Order::Physical })
    }

    /// A read's SELECT (bounds written in), its columns' types, its order, and the
    /// pieces a read in physical order is cut into.
    fn read_plan(&self, client: &mut Client, query: &TableQuery) -> Result<ReadPlan, SourceError> {
        let sql = self.build_sql(client, query, None, Bounds::Inline)?;
        let order = self.read_order(client, query, sql.window_ty.as_ref())?;
        let pieces = match order {
            Order::Physical => self.pieces(client, query.table)?,
            Order::Column(_) => Pieces::one(),
        };
        Ok(ReadPlan { sql, order, pieces })
    }

    /// The pieces of `table`'s pages a read in physical order is cut into, so that
    /// several backends produce it at once: one piece for a small table, a view (no
    /// pages of its own), a partitioned table, or a server before 14 (no TID range
    /// scans). The relation's size is read after the snapshot was taken, and the last
    /// piece has no upper bound, so a row the snapshot sees is in exactly one piece
    /// whatever the table did since.
    fn pieces(&self, client: &mut Client, table: &str) -> Result<Pieces, SourceError> {
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num')::int4,
                        pg_relation_size(to_regclass(quote_ident($1))) / current_setting('block_size')::int8",
                &[&table],
            )
            .map_err(|e| SourceError::PgQuery { table: table.into(), source: e })?;
        let (version, pages): (i32, i64) = (row.get(0), row.get(1));
        let each = self.piece_pages;
        let count = if version < 140_000 { 1 } else { usize::try_from(pages / i64::from(each)).unwrap_or(1).max(1) };
        Ok(Pieces { count, pages_each: each })
    }

    /// PostgreSQL's plan for a read (`EXPLAIN`; its first piece's for a read in pieces),
    /// one node per line, under the read's own settings: shows a selective window
    /// answered by an index scan, a wide one by a sequential scan or TID range scans.
    pub fn query_plan(&self, query: &TableQuery) -> Result<String, SourceError> {
        let mut client = self.client()?;
        let plan = self.read_plan(&mut client, query)?;
        let pg = |e| SourceError::PgQuery { table: query.table.into(), source: e };
        let mut txn = client.transaction().map_err(pg)?;
        plan.set_order(&mut txn).map_err(pg)?;
        let rows = txn.query(&format!("EXPLAIN {}", plan.select(0)), &[]).map_err(pg)?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n"))
    }
}

/// Settings under which a plain `SELECT` comes back in physical order: one sequential
/// scan from the table's first page (no synchronized scan joining another one midway, no
/// parallel workers interleaving pages, no index scan), the executor's order for a heap
/// scan. Local to the read's transaction.
const PHYSICAL_ORDER: &str = "SET LOCAL synchronize_seqscans = off; SET LOCAL max_parallel_workers_per_gather = 0; \
     SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_bitmapscan = off";

/// What a piece of a read in physical order adds: only its TID range scan, never a
/// sequential scan of the whole table per piece.
const PIECE_ORDER: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_tidscan = on";

/// Pages per piece of a read in physical order: about 8 MiB of heap, some 25,000 rows of
/// the demo's transactions, so a backend runs a piece ahead while the previous one is
/// consumed, and the statement per piece costs nothing next to its rows.
const PIECE_PAGES: u32 = 1024;

/// Batches a piece's reader may send ahead of the consumer (each about
/// `BATCH_BYTES`): room for a piece's records, so the next piece is produced while
/// this one is consumed, and a bound on memory whatever the rows hold.
const PIECE_DEPTH: usize = 48;

/// At most this many backends read one table at once.
const MAX_PIECE_READERS: usize = 4;

/// [`PIECE_PAGES`], or under `test-hooks` `FERRY_TEST_PG_PIECE_PAGES`: the tests cut
/// their small tables into many pieces.
fn piece_pages() -> u32 {
    #[cfg(feature = "test-hooks")]
    if let Some(pages) = std::env::var("FERRY_TEST_PG_PIECE_PAGES").ok().and_then(|v| v.parse().ok()).filter(|&p: &u32| p > 0) {
        return pages;
    }
    PIECE_PAGES
}

/// How a query's bounds reach the server.
#[derive(Clone, Copy)]
enum Bounds {
    Params,
    Inline,
}

/// A query's text (its SELECT … FROM and the conditions its WHERE ands), its
/// parameters, and the types of its selected columns.
struct Sql {
    head: String,
    conds: Vec<String>,
    params: Vec<Param>,
    selected: Vec<Column>,
    /// The window column's type, when the query has a window.
    window_ty: Option<Type>,
}

impl Sql {
    /// The query with `more` conditions besides its own.
    fn text(&self, more: &[&str]) -> String {
        let conds: Vec<&str> = self.conds.iter().map(String::as_str).chain(more.iter().copied()).collect();
        if conds.is_empty() { self.head.clone() } else { format!("{} WHERE {}", self.head, conds.join(" AND ")) }
    }

    /// Adds a bound as the next parameter and returns its placeholder.
    fn param(&mut self, v: i64, ty: &Type) -> String {
        self.params.push(if is_time(ty) { Param::Time(micros_to_system_time(v)) } else { Param::Int(v) });
        // The bound as bigint for any integer column: the comparison is still on the bare
        // column (int4 >= int8 has an operator), so its index applies.
        let cast = match *ty {
            Type::TIMESTAMP => "::timestamp",
            Type::INT2 | Type::INT4 => "::bigint",
            _ => "",
        };
        format!("${}{cast}", self.params.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(Param::as_sql).collect()
    }
}

/// A bound written into SQL: an integer, or a time literal typed like the column (UTC,
/// years before 1 as PostgreSQL's `BC`). `None` for a time beyond chrono's ±262,143
/// years, which no PostgreSQL timestamp reaches either (its range ends at 294,276 AD).
fn literal(micros: i64, ty: &Type) -> Option<String> {
    use chrono::Datelike;
    if !is_time(ty) {
        return Some(format!("{micros}::bigint"));
    }
    let t = chrono::DateTime::from_timestamp_micros(micros)?;
    let (year, era) = if t.year() >= 1 { (t.year(), "") } else { (1 - t.year(), " BC") };
    let date = format!("{year:04}-{}", t.format("%m-%d %H:%M:%S%.6f"));
    Some(if *ty == Type::TIMESTAMP { format!("TIMESTAMP '{date}{era}'") } else { format!("TIMESTAMPTZ '{date}+00{era}'") })
}

fn is_time(ty: &Type) -> bool {
    *ty == Type::TIMESTAMPTZ || *ty == Type::TIMESTAMP
}

#[derive(Debug, PartialEq)]
enum Order {
    /// `ORDER BY` this (quoted) column, ties by `ctid`.
    Column(String),
    /// A sequential scan's order, under [`PHYSICAL_ORDER`].
    Physical,
}

/// What a read sends: its SELECT, the selected columns' types, its order, and the
/// pieces it is read in.
struct ReadPlan {
    sql: Sql,
    order: Order,
    pieces: Pieces,
}

impl ReadPlan {
    /// The SELECT of piece `piece` (of the whole read when it is one piece).
    fn select(&self, piece: usize) -> String {
        let range = self.pieces.tid_range(piece);
        let mut text = self.sql.text(&range.iter().map(String::as_str).collect::<Vec<_>>());
        if let Order::Column(col) = &self.order {
            text.push_str(&format!(" ORDER BY {col}, ctid"));
        }
        text
    }

    fn columns(&self) -> &[Column] {
        &self.sql.selected
    }

    /// Sets a read's transaction to return rows in the plan's order.
    fn set_order(&self, txn: &mut postgres::Transaction) -> Result<(), postgres::Error> {
        if self.order == Order::Physical {
            txn.batch_execute(PHYSICAL_ORDER)?;
        }
        if self.pieces.count > 1 {
            txn.batch_execute(PIECE_ORDER)?;
        }
        Ok(())
    }
}

/// A read in physical order cut into consecutive page ranges.
#[derive(Debug, Clone, Copy)]
struct Pieces {
    count: usize,
    pages_each: u32,
}

impl Pieces {
    fn one() -> Self {
        Pieces { count: 1, pages_each: PIECE_PAGES }
    }

    /// Piece `i`'s pages as `ctid` conditions; the first has no lower bound and the last
    /// no upper one. `None` for a read in one piece.
    fn tid_range(&self, i: usize) -> Option<String> {
        let page = |i: usize| i as u64 * u64::from(self.pages_each);
        let lower = (i > 0).then(|| format!("ctid >= '({},0)'::tid", page(i)));
        let upper = (i + 1 < self.count).then(|| format!("ctid < '({},0)'::tid", page(i + 1)));
        match (lower, upper) {
            (Some(l), Some(u)) => Some(format!("{l} AND {u}")),
            (l, u) => l.or(u),
        }
    }

    /// Piece `i`'s pages in words, for naming a row in a message.
    fn describe(&self, i: usize) -> String {
        let first = i as u64 * u64::from(self.pages_each);
        if self.count == 1 {
            String::new()
        } else if i + 1 < self.count {
            format!(" of pages {first} to {}", first + u64::from(self.pages_each) - 1)
        } else {
            format!(" of pages {first} on")
        }
    }
}

/// A bound of a window: an integer, or a time for time columns.
enum Param {
    Int(i64),
    Time(SystemTime),
}

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Int(v) => v,
            Param::Time(t) => t,
        }
    }
}

fn micros_to_system_time(micros: i64) -> SystemTime {
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

/// A sampled cut value as microseconds: an integer column's value, or a time's.
fn micros_of(row: &postgres::Row) -> Result<i64, postgres::Error> {
    if let Ok(v) = row.try_get::<_, i64>(0) {
        return Ok(v);
    }
    if let Ok(v) = row.try_get::<_, i32>(0) {
        return Ok(v.into());
    }
    if let Ok(v) = row.try_get::<_, i16>(0) {
        return Ok(v.into());
    }
    let t: SystemTime = row.try_get(0)?;
    Ok(match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    })
}

fn supported(ty: &Type) -> bool {
    [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::OID,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::BYTEA,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMP,
        Type::UUID,
        Type::JSON,
        Type::JSONB,
    ]
    .contains(ty)
}

impl Source for PostgresSource {
    fn columns(&self, table: &str) -> Result<Option<Vec<String>>, SourceError> {
        let mut client = self.client()?;
        Ok(Self::table_columns(&mut client, table)?.map(|cols| cols.into_iter().map(|c| c.name).collect()))
    }

    fn count(&self, query: &TableQuery) -> Result<u64, SourceError> {
        let mut client = self.client()?;
        let sql = self.build_sql(&mut client, query, Some("count(*)"), Bounds::Params)?;
        let pg = |e| SourceError::PgQuery { table: query.table.into(), source: e };
        let mut txn = self.pin.begin(&mut client).map_err(pg)?;
        let row = txn.query_one(&sql.text(&[]), &sql.refs()).map_err(pg)?;
        txn.commit().map_err(pg)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn open(&self, query: &TableQuery) -> Result<Box<dyn RowStream>, SourceError> {
        Ok(Box::new(self.start(query, RowBatchBuilder::with_capacity(BATCH_BYTES + 4096))?))
    }

    fn sample_sorted(&self, query: &TableQuery, column: &str, one_in: u64) -> Result<Vec<i64>, SourceError> {
        let mut client = self.client()?;
        let col = quote_ident(column)?;
        let micros = Self::micros_expr(&mut client, query.table, column)?;
        let mut sql = self.build_sql(&mut client, query, Some(&col), Bounds::Params)?;
        let m = super::SAMPLE_MODULUS;
        sql.params.push(Param::Int(super::sample_threshold(one_in)));
        let sampled = format!("{col} IS NOT NULL AND mod(mod({micros}, {m}) + {m}, {m}) < ${}", sql.params.len());
        let cut = format!("{} ORDER BY {col}", sql.text(&[&sampled]));
        let pg = |e| SourceError::PgQuery { table: query.table.into(), source: e };
        let mut txn = self.pin.begin(&mut client).map_err(pg)?;
        let rows = txn.query(&cut, &sql.refs()).map_err(pg)?;
        txn.commit().map_err(pg)?;
        rows.iter().map(|row| micros_of(row).map_err(pg)).collect()
    }

    fn open_records(&self, query: &TableQuery, encoder: RecordEncoder) -> Result<Box<dyn RecordStream>, SourceError> {
        Ok(Box::new(self.start(query, encoder)?))
    }

    fn consistency(&self) -> Consistency {
        Consistency::PostgresExportedSnapshot
    }
}

impl PostgresSource {
    /// `column` of `table` as integer microseconds, in SQL: the value the sample of the
    /// shard cut points hashes.
    fn micros_expr(client: &mut Client, table: &str, column: &str) -> Result<String, SourceError> {
        let columns = Self::table_columns(client, table)?.ok_or_else(|| SourceError::NoTable { table: table.into() })?;
        let ty = &columns
            .iter()
            .find(|k| k.name == column)
            .ok_or_else(|| SourceError::NoColumn { table: table.into(), column: column.into() })?
            .ty;
        let col = quote_ident(column)?;
        match *ty {
            Type::TIMESTAMPTZ | Type::TIMESTAMP => Ok(format!("(extract(epoch FROM {col}) * 1000000)::bigint")),
            Type::INT2 | Type::INT4 | Type::INT8 => Ok(format!("{col}::bigint")),
            _ => Err(SourceError::PgWindowType { table: table.into(), column: column.into(), ty: ty.name().into() }),
        }
    }

    /// Starts the reader threads writing the query's rows into `cells`: one, or for a
    /// read in pieces one per core (at most [`MAX_PIECE_READERS`]), each on its own
    /// connection in the pinned snapshot.
    fn start<C: Cells>(&self, query: &TableQuery, cells: C) -> Result<ChannelStream<C::Batch>, SourceError> {
        let mut client = self.client()?;
        let plan = self.read_plan(&mut client, query)?;
        // Prepared here so a bad query is reported by `open`, not by the first batch.
        client.prepare(&plan.select(0)).map_err(|e| SourceError::PgQuery { table: query.table.into(), source: e })?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let wanted = cores.clamp(1, MAX_PIECE_READERS).min(plan.pieces.count);
        // A connection for an extra reader is waited for briefly: with the pool taken by
        // a plugin's other open reads, the read goes on with fewer readers.
        let mut clients = vec![client];
        clients.extend((1..wanted).map_while(|_| self.pool.get_timeout(Duration::from_secs(2)).ok()));
        let readers = clients.len();
        let read = std::sync::Arc::new(PieceRead {
            pin: self.pin.clone(),
            plan,
            table: query.table.to_string(),
            window_column: query.range.filter(|r| r.start.is_some() || r.end.is_some()).map(|r| r.column.to_string()),
            readers,
        });
        let pieces = read.plan.pieces.count;
        let depth = if readers > 1 { PIECE_DEPTH } else { 2 };
        let mut sinks: Vec<C> = (1..readers).map(|_| cells.fresh()).collect();
        sinks.insert(0, cells);
        let workers = clients
            .into_iter()
            .zip(sinks)
            .enumerate()
            .map(|(w, (client, cells))| {
                let read = read.clone();
                (cells, move |sink: &mut RowSink<C>| read.run(w, client, sink))
            })
            .collect();
        Ok(spawn_pieces(&format!("ferry-pg-{}", query.table), query.table, pieces, depth, workers))
    }
}

/// What every reader of one read shares.
struct PieceRead {
    pin: std::sync::Arc<Pin>,
    plan: ReadPlan,
    table: String,
    /// The window's column when the window has bounds, checked for NULLs first.
    window_column: Option<String>,
    readers: usize,
}

impl PieceRead {
    /// Reader `w`'s share: pieces `w`, `w + readers`, … in one transaction in the pinned
    /// snapshot.
    fn run<C: Cells>(&self, w: usize, mut client: Pooled, sink: &mut RowSink<C>) -> Result<(), SourceError> {
        let pg = |e| SourceError::PgQuery { table: self.table.clone(), source: e };
        let mut txn = self.pin.begin(&mut client).map_err(pg)?;
        if let (0, Some(column)) = (w, &self.window_column) {
            check_window_values(&mut txn, &self.table, column)?;
        }
        self.plan.set_order(&mut txn).map_err(pg)?;
        for piece in (w..self.plan.pieces.count).step_by(self.readers) {
            if !self.copy_piece(&mut txn, piece, sink)? || !sink.end_piece() {
                return Ok(()); // the consumer has gone
            }
        }
        txn.commit().map_err(pg)
    }

    /// Streams one piece's rows with one binary `COPY`: `false` when the consumer has gone.
    fn copy_piece<C: Cells>(&self, txn: &mut postgres::Transaction, piece: usize, sink: &mut RowSink<C>) -> Result<bool, SourceError> {
        let table = &self.table;
        let copy_err = |source| SourceError::PgCopy { table: table.clone(), source };
        let sql = format!("COPY ({}) TO STDOUT (FORMAT binary)", self.plan.select(piece));
        let stream = txn.copy_out(&sql).map_err(|e| SourceError::PgQuery { table: table.clone(), source: e })?;
        let mut rows = CopyRows::new(stream).map_err(copy_err)?;
        let columns = self.plan.columns();
        let (mut seen, mut scratch) = (0u64, String::new());
        while let Some(row) = rows.next_row(columns.len()).map_err(copy_err)? {
            seen += 1;
            for (column, value) in columns.iter().zip(row) {
                match value {
                    None => sink.cells.null(),
                    Some(bytes) => encode(&mut sink.cells, &mut scratch, &column.ty, bytes).map_err(|reason| SourceError::PgValue {
                        table: table.clone(),
                        column: column.name.clone(),
                        row: format!("{seen}{}", self.plan.pieces.describe(piece)),
                        reason,
                    })?,
                }
            }
            if !sink.end_row()? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Refuses a read whose window column is NULL in any row (in the read's own snapshot):
/// NULL compares with no bound, so the row would silently be in no window. `IS NULL` is
/// answered from an index on the column when there is one.
fn check_window_values(txn: &mut postgres::Transaction, table: &str, column: &str) -> Result<(), SourceError> {
    let sql = format!("SELECT ctid::text FROM {} WHERE {} IS NULL LIMIT 1", quote_ident(table)?, quote_ident(column)?);
    let found = txn.query_opt(&sql, &[]).map_err(|e| SourceError::PgQuery { table: table.into(), source: e })?;
    match found {
        Some(row) => Err(SourceError::WindowValue {
            table: table.into(),
            column: column.into(),
            row: format!("row at ctid {}", row.get::<_, String>(0)),
            value: "NULL".into(),
            expected: "a value",
        }),
        None => Ok(()),
    }
}

fn be<const N: usize>(b: &[u8]) -> Result<[u8; N], String> {
    b.try_into().map_err(|_| format!("expected {N} bytes, got {}", b.len()))
}

/// Decodes one binary value into the row's cells.
fn encode(batch: &mut impl Cells, scratch: &mut String, ty: &Type, b: &[u8]) -> Result<(), String> {
    match *ty {
        Type::BOOL => batch.integer((be::<1>(b)?[0] != 0) as i64),
        Type::INT2 => batch.integer(i16::from_be_bytes(be(b)?) as i64),
        Type::INT4 => batch.integer(i32::from_be_bytes(be(b)?) as i64),
        Type::OID => batch.integer(u32::from_be_bytes(be(b)?) as i64),
        Type::INT8 => batch.integer(i64::from_be_bytes(be(b)?)),
        Type::FLOAT4 => batch.real(f32::from_be_bytes(be(b)?) as f64),
        Type::FLOAT8 => batch.real(f64::from_be_bytes(be(b)?)),
        Type::NUMERIC => {
            numeric_text_into(b, scratch)?;
            batch.text(scratch);
        }
        Type::TIMESTAMPTZ | Type::TIMESTAMP => {
            let v = i64::from_be_bytes(be(b)?);
            if v == i64::MAX || v == i64::MIN {
                return Err("is infinity, which has no UTC time; filter it out or cast it in a view".into());
            }
            batch.integer(v.checked_add(PG_EPOCH_MICROS).ok_or("is out of range")?);
        }
        Type::UUID => batch.text(&uuid::Uuid::from_bytes(be(b)?).hyphenated().to_string()),
        // jsonb's binary format is a version byte (1) and the text.
        Type::JSONB => match b.split_first() {
            Some((1, text)) => batch.text(std::str::from_utf8(text).map_err(|e| e.to_string())?),
            _ => return Err("is jsonb in an unknown binary version".into()),
        },
        Type::BYTEA => batch.blob(b),
        // Text types. Text that is not UTF-8 goes over as a blob, as SQLite's does.
        _ => match std::str::from_utf8(b) {
            Ok(s) => batch.text(s),
            Err(_) => batch.blob(b),
        },
    }
    Ok(())
}

/// `numeric`'s binary format as exact decimal text with the value's display scale, as
/// PostgreSQL prints it ("12.50", "-0.000100", "7").
#[cfg(test)]
pub(crate) fn numeric_text(b: &[u8]) -> Result<String, String> {
    let mut out = String::new();
    numeric_text_into(b, &mut out)?;
    Ok(out)
}

/// [`numeric_text`] into `out` (cleared first), without an allocation per digit group.
fn numeric_text_into(b: &[u8], out: &mut String) -> Result<(), String> {
    out.clear();
    if b.len() < 8 {
        return Err(format!("numeric of {} bytes is truncated", b.len()));
    }
    let ndigits = i16::from_be_bytes([b[0], b[1]]);
    let weight = i16::from_be_bytes([b[2], b[3]]) as i32;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    let dscale = u16::from_be_bytes([b[6], b[7]]) as usize;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("is NaN, which is not an exact decimal".into()),
        _ => return Err("is infinite, which is not an exact decimal".into()),
    }
    if ndigits < 0 || b.len() != 8 + 2 * ndigits as usize {
        return Err("numeric has a bad length".into());
    }
    let digits = &b[8..];
    // The `j`th stored base-10000 digit (the first at `weight`); zero past the stored ones.
    let digit = |j: i32| -> Result<u16, String> {
        let Some(pair) = usize::try_from(j).ok().and_then(|j| digits.get(2 * j..2 * j + 2)) else { return Ok(0) };
        let d = u16::from_be_bytes([pair[0], pair[1]]);
        if d > 9999 { Err(format!("numeric digit {d} is not below 10000")) } else { Ok(d) }
    };
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            push_digits(out, digit(i)?, i > 0);
        }
    }
    if dscale > 0 {
        out.push('.');
        let start = out.len();
        for k in 0..dscale.div_ceil(4) as i32 {
            push_digits(out, digit(weight + 1 + k)?, true);
        }
        out.truncate(start + dscale);
    }
    Ok(())
}

/// A base-10000 digit in decimal, as four characters when `pad`.
fn push_digits(out: &mut String, d: u16, pad: bool) {
    let chars = [d / 1000, d / 100 % 10, d / 10 % 10, d % 10].map(|c| char::from(b'0' + c as u8));
    let skip = if pad { 0 } else { chars.iter().take(3).take_while(|&&c| c == '0').count() };
    out.extend(&chars[skip..]);
}

/// The demo platform's PostgreSQL types: SQLite stores everything as INTEGER or TEXT,
/// PostgreSQL gets what a real platform would use. Booleans are `boolean`, `_at`
/// columns `timestamptz`, money `numeric(14,2)`, rates and coordinates `numeric(10,6)`.
/// A file name may hold a NUL byte (the demo has one on purpose), which PostgreSQL's
/// `text` cannot store, so `attachments.file_name` is `bytea`.
fn demo_pg_type(table: &str, column: &str, sqlite_type: &str) -> &'static str {
    let boolean = column.starts_with("is_") || column.contains("_is_") || column.starts_with("opted_out") || column == "push_enabled";
    match (sqlite_type, column) {
        ("INTEGER", c) if c.ends_with("_at") => "timestamptz",
        ("INTEGER", _) if boolean => "boolean",
        ("INTEGER", _) => "bigint",
        ("TEXT", "amount" | "balance" | "available_balance" | "credit_limit" | "current_amount") => "numeric(14,2)",
        ("TEXT", "apr" | "apy" | "latitude" | "longitude") => "numeric(10,6)",
        ("TEXT", "file_name") if table == "attachments" => "bytea",
        _ => "text",
    }
}

/// Copies the demo platform from its SQLite database into PostgreSQL, replacing the
/// demo's tables there, in one transaction: every table, with proper types, loaded with
/// `COPY` in SQLite's rowid order, then the same indexes. Returns the rows copied.
pub fn load_demo(sqlite: &std::path::Path, url: &PostgresUrl) -> Result<u64, SourceError> {
    use std::io::Write;
    let lite = rusqlite::Connection::open_with_flags(sqlite, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| SourceError::Open { path: sqlite.into(), source: e })?;
    let lite_err = |table: &str| {
        let table = table.to_string();
        move |e| SourceError::Query { table: table.clone(), source: e }
    };
    let tables: Vec<String> = lite
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(lite_err("sqlite_master"))?;
    let indexes: Vec<String> = lite
        .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY rowid")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(lite_err("sqlite_master"))?;

    let mut client = connect(url)?;
    let mut txn = client.transaction().map_err(|e| SourceError::Postgres { target: url.to_string(), source: e })?;
    let mut total = 0u64;
    for table in &tables {
        let pg = |e| SourceError::PgQuery { table: table.clone(), source: e };
        let qtable = quote_ident(table)?;
        let cols: Vec<(String, String, bool, bool)> = lite
            .prepare(&format!("SELECT name, upper(type), \"notnull\", (SELECT count(*) FROM pragma_index_list({table:?}) il JOIN pragma_index_info(il.name) ii WHERE il.\"unique\" AND ii.name = ti.name) FROM pragma_table_info({table:?}) ti ORDER BY cid"))
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get::<_, i64>(3)? != 0)))?.collect())
            .map_err(lite_err(table))?;
        let defs = cols
            .iter()
            .map(|(name, ty, not_null, unique)| {
                Ok(format!(
                    "{} {}{}{}",
                    quote_ident(name)?,
                    demo_pg_type(table, name, ty),
                    if *not_null { " NOT NULL" } else { "" },
                    if *unique { " UNIQUE" } else { "" }
                ))
            })
            .collect::<Result<Vec<_>, SourceError>>()?
            .join(", ");
        txn.batch_execute(&format!("DROP TABLE IF EXISTS {qtable}; CREATE TABLE {qtable} ({defs})")).map_err(pg)?;
        let names = cols.iter().map(|c| quote_ident(&c.0)).collect::<Result<Vec<_>, _>>()?.join(", ");
        let kinds: Vec<&str> = cols.iter().map(|(name, ty, ..)| demo_pg_type(table, name, ty)).collect();
        let mut writer = txn.copy_in(&format!("COPY {qtable} ({names}) FROM STDIN")).map_err(pg)?;
        let mut stmt = lite.prepare(&format!("SELECT {names} FROM {qtable} ORDER BY rowid")).map_err(lite_err(table))?;
        let mut rows = stmt.query([]).map_err(lite_err(table))?;
        let mut line = Vec::with_capacity(1024);
        while let Some(row) = rows.next().map_err(lite_err(table))? {
            line.clear();
            for (i, kind) in kinds.iter().enumerate() {
                if i > 0 {
                    line.push(b'\t');
                }
                copy_text(&mut line, kind, row.get_ref(i).map_err(lite_err(table))?).map_err(|reason| SourceError::PgValue {
                    table: table.clone(),
                    column: cols[i].0.clone(),
                    row: total.to_string(),
                    reason,
                })?;
            }
            line.push(b'\n');
            writer.write_all(&line).map_err(|e| SourceError::DemoIo { path: sqlite.into(), source: e })?;
            total += 1;
        }
        writer.finish().map_err(pg)?;
    }
    for sql in &indexes {
        // SQLite's `CREATE INDEX name ON table (cols)` is PostgreSQL too.
        txn.batch_execute(sql).map_err(|e| SourceError::PgQuery { table: sql.clone(), source: e })?;
    }
    txn.commit().map_err(|e| SourceError::Postgres { target: url.to_string(), source: e })?;
    // As autovacuum leaves a production table: statistics for the planner, and every
    // row's commit recorded in its page, so the first export does not pay for writing
    // hint bits into the whole table (measured: 2.8 against 2.0 CPU s of the server for
    // a first read of 992k transactions).
    let names = tables.iter().map(|t| quote_ident(t)).collect::<Result<Vec<_>, _>>()?.join(", ");
    client.batch_execute(&format!("VACUUM (ANALYZE) {names}")).map_err(|e| SourceError::PgQuery { table: "VACUUM".into(), source: e })?;
    Ok(total)
}

/// One value in `COPY`'s text format for a column of PostgreSQL type `kind`.
fn copy_text(out: &mut Vec<u8>, kind: &str, value: rusqlite::types::ValueRef) -> Result<(), String> {
    use rusqlite::types::ValueRef;
    let escape = |out: &mut Vec<u8>, bytes: &[u8]| {
        for &b in bytes {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    };
    match (kind, value) {
        (_, ValueRef::Null) => out.extend_from_slice(b"\\N"),
        ("timestamptz", ValueRef::Integer(v)) => {
            let t = chrono::DateTime::from_timestamp_micros(v).ok_or_else(|| format!("{v} is not a time in microseconds"))?;
            out.extend_from_slice(t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string().as_bytes());
        }
        ("boolean", ValueRef::Integer(v)) => out.extend_from_slice(if v != 0 { b"t" } else { b"f" }),
        (_, ValueRef::Integer(v)) => out.extend_from_slice(v.to_string().as_bytes()),
        (_, ValueRef::Real(v)) => out.extend_from_slice(v.to_string().as_bytes()),
        ("bytea", ValueRef::Text(b) | ValueRef::Blob(b)) => {
            // bytea's hex input form, with its backslash escaped for COPY.
            out.extend_from_slice(b"\\\\x");
            out.extend_from_slice(hex::encode(b).as_bytes());
        }
        (_, ValueRef::Text(b)) => {
            if b.contains(&0) {
                return Err("holds a NUL byte, which PostgreSQL text cannot store; make the column bytea".into());
            }
            escape(out, b);
        }
        (_, ValueRef::Blob(_)) => return Err(format!("is a blob but the column is {kind}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_every_page_once_and_the_last_has_no_end() {
        assert_eq!(Pieces { count: 1, pages_each: 8 }.tid_range(0), None);
        let three = Pieces { count: 3, pages_each: 8 };
        let ranges: Vec<_> = (0..3).map(|i| three.tid_range(i).unwrap()).collect();
        assert_eq!(ranges, ["ctid < '(8,0)'::tid", "ctid >= '(8,0)'::tid AND ctid < '(16,0)'::tid", "ctid >= '(16,0)'::tid"],);
        assert_eq!(three.describe(1), " of pages 8 to 15");
        assert_eq!(three.describe(2), " of pages 16 on");
    }

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [ndigits as u16, weight as u16, sign, dscale] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numeric_binary_decodes_to_postgres_text() {
        // 12.50: digits [12, 5000], weight 0, scale 2.
        assert_eq!(numeric_text(&numeric(2, 0, 0, 2, &[12, 5000])).unwrap(), "12.50");
        // -15243.60: [1, 5243, 6000], weight 1.
        assert_eq!(numeric_text(&numeric(3, 1, 0x4000, 2, &[1, 5243, 6000])).unwrap(), "-15243.60");
        // 0.000100 with scale 6: [1] at weight -1 (0.0001).
        assert_eq!(numeric_text(&numeric(1, -1, 0, 6, &[1])).unwrap(), "0.000100");
        // 10000 (trailing zero groups dropped): [1] weight 1, scale 0.
        assert_eq!(numeric_text(&numeric(1, 1, 0, 0, &[1])).unwrap(), "10000");
        // 0.00: no digits.
        assert_eq!(numeric_text(&numeric(0, 0, 0, 2, &[])).unwrap(), "0.00");
        assert!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])).is_err());
        // 1234567.891: [123, 4567, 8910] at weight 1, scale 3; a digit of 10000 is refused.
        assert_eq!(numeric_text(&numeric(3, 1, 0, 3, &[123, 4567, 8910])).unwrap(), "1234567.891");
        assert!(numeric_text(&numeric(1, 0, 0, 0, &[10000])).is_err());
    }

    #[test]
    fn bounds_written_into_sql_are_exact_literals() {
        assert_eq!(literal(-5, &Type::INT4).unwrap(), "-5::bigint");
        assert_eq!(literal(1_767_225_600_000_001, &Type::TIMESTAMPTZ).unwrap(), "TIMESTAMPTZ '2026-01-01 00:00:00.000001+00'");
        assert_eq!(literal(0, &Type::TIMESTAMP).unwrap(), "TIMESTAMP '1970-01-01 00:00:00.000000'");
        // 44 BC is astronomical year -43; 146,000 years on still has a literal.
        let ides = chrono::NaiveDate::from_ymd_opt(-43, 3, 15).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros();
        assert_eq!(literal(ides, &Type::TIMESTAMPTZ).unwrap(), "TIMESTAMPTZ '0044-03-15 00:00:00.000000+00 BC'");
        assert!(literal(i64::MAX / 2, &Type::TIMESTAMPTZ).unwrap().starts_with("TIMESTAMPTZ '148"));
        assert_eq!(literal(i64::MAX, &Type::TIMESTAMPTZ), None);
    }

    #[test]
    fn the_password_never_shows() {
        let url = PostgresUrl::parse("postgres://ferry:hunter2@db.example:6543/platform").unwrap();
        assert_eq!(url.to_string(), "postgres://ferry@db.example:6543/platform");
        assert!(!format!("{url:?}").contains("hunter2"));
    }
}
