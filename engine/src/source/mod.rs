//! The platform's data, behind a trait so PostgreSQL can follow SQLite.
//!
//! Sources hand out rows already encoded as row batches (see `wit/ferry.wit`), so the
//! host never materialises a table: a read streams batch by batch, and range filters are
//! part of the query the source runs.

mod blobs;
mod demo;
mod pg_copy;
mod postgres;
mod reader;
pub(crate) mod row_batch;
mod sqlite;

pub use blobs::{BlobError, BlobStore, DirBlobStore};
pub use demo::{DEMO_NOW_MICROS, DemoCounts, DemoSpec, generate as generate_demo};
pub(crate) use reader::{ChannelStream, RowSink, spawn_pieces, spawn_reader};
pub use row_batch::{RowBatch, RowBatchBuilder};

pub use postgres::{PostgresSource, PostgresUrl, load_demo as load_demo_postgres};
pub use sqlite::SqliteSource;

pub use crate::records::Cells;
use crate::records::{RecordBatch, RecordEncoder};

use std::path::PathBuf;

/// A half-open range `[start, end)` on an integer column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<'a> {
    pub column: &'a str,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// A window is read through its column's index only when it is selective. The index
/// hands rows back in the column's order, one random table lookup each; for a window
/// holding most of the table (months = "all", 24 of 36 months) a scan in physical order
/// with the same WHERE clause is several times faster (measured on 1M transactions:
/// SQLite 5.3 s of reader wait through the index; PostgreSQL 11.8 s against 3.4 s for
/// the same rows unordered). Both sources use this one rule, so they give the same rows
/// in the same order.
const INDEX_MAX_SHARE: f64 = 0.25; // use the index when the window spans <= 1/4 of the values

/// Whether `range` spans at most [`INDEX_MAX_SHARE`] of the column's values, from the
/// column's min and max (two index lookups: counting the window's rows instead walks the
/// index over the whole window before the first row is read). An empty column is
/// selective: there is nothing to scan.
pub(crate) fn selective(range: &Range, min: Option<f64>, max: Option<f64>) -> bool {
    let (Some(min), Some(max)) = (min, max) else { return true };
    let lo = range.start.map_or(min, |s| (s as f64).max(min));
    let hi = range.end.map_or(max + 1.0, |e| (e as f64).min(max + 1.0));
    (hi - lo).max(0.0) <= INDEX_MAX_SHARE * (max - min + 1.0)
}

/// A read of one table: which columns, which rows, in which order.
#[derive(Debug, Clone)]
pub struct TableQuery<'a> {
    pub table: &'a str,
    pub columns: &'a [String],
    pub range: Option<Range<'a>>,
    pub order_by: Option<&'a str>,
    /// The snapshot's as-of cut on the table's creation column (`end` = as_of): rows
    /// created at or after it are not read. Applied beside `range`, never instead.
    pub created_before: Option<Range<'a>>,
    /// A sharded run's slice of the main table (`ferry run --shard i/N`): a range on the
    /// creation column. The first slice (no `start`) also holds the rows whose creation
    /// time is NULL or not a number, as the as-of cut keeps them.
    pub shard: Option<Range<'a>>,
}

impl TableQuery<'_> {
    /// Every range the WHERE clause must hold: the window, the as-of cut, the shard.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = &Range<'_>> {
        self.range.iter().chain(self.created_before.iter()).chain(self.shard.iter())
    }

    /// Whether `range` is one that keeps rows with no numeric value (the as-of cut, the
    /// first shard's slice): those rows are read, never dropped unseen.
    pub(crate) fn keeps_unvalued(&self, range: &Range<'_>) -> bool {
        self.created_before.as_ref().is_some_and(|c| std::ptr::eq(c, range))
            || self.shard.as_ref().is_some_and(|c| std::ptr::eq(c, range) && c.start.is_none())
    }
}

/// A forward-only stream of row batches.
pub trait RowStream: Send {
    /// The next batch, or `None` when the query is exhausted.
    fn next_batch(&mut self) -> Result<Option<RowBatch>, SourceError>;
}

/// A forward-only stream of records a read's rows were copied into (`records.copy`).
pub trait RecordStream: Send {
    /// The next batch, or `None` when the query is exhausted.
    fn next_records(&mut self) -> Result<Option<RecordBatch>, SourceError>;
}

/// Records from a source's row batches, converted on the consumer's thread: for
/// sources without a reader of their own.
struct ConvertedRows {
    rows: Box<dyn RowStream>,
    encoder: RecordEncoder,
}

impl RecordStream for ConvertedRows {
    fn next_records(&mut self) -> Result<Option<RecordBatch>, SourceError> {
        let Some(batch) = self.rows.next_batch()? else { return Ok(None) };
        self.encoder.row_batch(&batch.data, batch.rows).map_err(SourceError::Misfit)?;
        Ok(Some(self.encoder.take()))
    }
}

/// Where the platform's tables come from.
pub trait Source: Send + Sync {
    /// The table's column names, or `None` when there is no such table.
    fn columns(&self, table: &str) -> Result<Option<Vec<String>>, SourceError>;
    /// Rows the query would return.
    fn count(&self, query: &TableQuery) -> Result<u64, SourceError>;
    /// Starts streaming the query's rows.
    fn open(&self, query: &TableQuery) -> Result<Box<dyn RowStream>, SourceError>;
    /// Starts streaming the query's rows as records (`records.copy`). By default the
    /// row batches of [`Source::open`] are converted on the consumer's thread.
    fn open_records(&self, query: &TableQuery, encoder: RecordEncoder) -> Result<Box<dyn RecordStream>, SourceError> {
        Ok(Box::new(ConvertedRows { rows: self.open(query)?, encoder }))
    }
    /// The numeric values of `column` (microseconds for a time) among the query's rows,
    /// sorted, of the rows in a deterministic 1-in-`one_in` sample: those whose value `v`
    /// has `v mod SAMPLE_MODULUS < SAMPLE_MODULUS / one_in` ([`sample_threshold`]). The
    /// sample depends on the values alone, not on where rows lie on disk, so every shard
    /// draws the same one; only the sample is sorted, never the whole column: the cut
    /// points of balanced shards.
    fn sample_sorted(&self, query: &TableQuery, column: &str, one_in: u64) -> Result<Vec<i64>, SourceError>;
    /// How the source's reads share one point in time.
    fn consistency(&self) -> Consistency {
        Consistency::PerRead
    }
}

/// The modulus of the shard cut points' sample: a prime (2^31 - 1), so values spaced by
/// a whole second, minute or day still fall on every residue.
pub(crate) const SAMPLE_MODULUS: i64 = 2_147_483_647;

/// A row is in a 1-in-`one_in` sample when its value mod [`SAMPLE_MODULUS`] is below this.
pub(crate) fn sample_threshold(one_in: u64) -> i64 {
    SAMPLE_MODULUS / (one_in.clamp(1, SAMPLE_MODULUS as u64) as i64)
}

/// How every read of one source sees the same state (issue 19), for the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// SQLite in WAL mode: one snapshot (`sqlite3_snapshot_get`), opened by every read.
    SqliteSnapshot,
    /// SQLite in rollback-journal mode: a shared lock held for the run, so nothing
    /// changed (the platform's writers waited).
    SqliteSharedLock,
    /// PostgreSQL: one exported snapshot (`pg_export_snapshot`), set by every read's
    /// repeatable-read transaction.
    PostgresExportedSnapshot,
    /// Each read saw the source as it was when that read began.
    PerRead,
}

impl Consistency {
    /// The manifest's name for it.
    pub fn method(self) -> &'static str {
        match self {
            Consistency::SqliteSnapshot => "sqlite-wal-snapshot",
            Consistency::SqliteSharedLock => "sqlite-shared-lock",
            Consistency::PostgresExportedSnapshot => "postgres-exported-snapshot",
            Consistency::PerRead => "per-read",
        }
    }

    /// One sentence for people reading the manifest.
    pub fn detail(self) -> &'static str {
        match self {
            Consistency::SqliteSnapshot => "every read opened one WAL snapshot taken when the run began (sqlite3_snapshot_open)",
            Consistency::SqliteSharedLock => {
                "rollback-journal database: a shared lock held for the whole run kept it unchanged (writers waited)"
            }
            Consistency::PostgresExportedSnapshot => {
                "every read ran in a repeatable-read transaction set to one snapshot exported when the run began (SET TRANSACTION SNAPSHOT)"
            }
            Consistency::PerRead => "each read saw the source as it was when the read began; resources may differ in time",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source database {path} does not exist; create it with `ferry demo --out {}` or fix `[source] sqlite`", path.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    Missing { path: PathBuf },
    #[error("cannot open source database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("query on table `{table}` failed: {source}")]
    Query { table: String, source: rusqlite::Error },
    #[error("`{name}` is not a plain identifier (letters, digits and _ only)")]
    BadIdentifier { name: String },
    #[error("the reader of table `{table}` stopped unexpectedly")]
    ReaderGone { table: String },
    #[error("cannot write demo platform to {path}: {source}")]
    DemoIo { path: PathBuf, source: std::io::Error },
    #[error(
        "`[source] postgres` is not a PostgreSQL connection string ({reason}); write it like \"postgres://user:password@host:5432/dbname\""
    )]
    PostgresUrl { reason: String },
    #[error("cannot use PostgreSQL at {target}: {source}; check the server is up and the URL's user, password and database")]
    Postgres { target: String, source: ::postgres::Error },
    #[error("cannot get a connection to PostgreSQL at {target}: {reason}; check the server is up and accepts connections")]
    PgPool { target: String, reason: String },
    #[error("query on table `{table}` failed: {source}")]
    PgQuery { table: String, source: ::postgres::Error },
    #[error("reading table `{table}` from PostgreSQL failed: {source}")]
    PgCopy { table: String, source: pg_copy::CopyError },
    #[error(
        "a window or shard bound on `{table}.{column}` ({micros} µs since 1970) is beyond any PostgreSQL timestamp; check the job's window or as_of"
    )]
    PgBound { table: String, column: String, micros: i64 },
    #[error("column `{table}.{column}` has PostgreSQL type {ty}, which ferry does not read; cast it in a view (e.g. to text or numeric)")]
    PgType { table: String, column: String, ty: String },
    #[error("table `{table}`, row {row}, column `{column}`: the value {reason}")]
    PgValue { table: String, column: String, row: String, reason: String },
    #[error("the source has no table `{table}`; check the job's `[source]`")]
    NoTable { table: String },
    #[error("table `{table}` has no column `{column}`")]
    NoColumn { table: String, column: String },
    /// A row whose window column holds a value the window's bounds cannot be compared
    /// with: left to the database, it would silently fall out of every window.
    #[error(
        "table `{table}`, {row}, column `{column}`: {value} cannot be compared with the time window; the window column must hold {expected} in every row (fix or remove that row)"
    )]
    WindowValue { table: String, column: String, row: String, value: String, expected: &'static str },
    #[error(
        "column `{table}.{column}` has PostgreSQL type {ty}, which cannot be compared with a time window; the window column must be timestamptz, timestamp or an integer type"
    )]
    PgWindowType { table: String, column: String, ty: String },
    /// A value that does not fit its field, in a copy; the message names the row,
    /// column and field.
    #[error("{0}")]
    Misfit(String),
}

/// Quotes an identifier after checking it is one; sources never splice anything else.
pub(crate) fn quote_ident(name: &str) -> Result<String, SourceError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok { Ok(format!("\"{name}\"")) } else { Err(SourceError::BadIdentifier { name: name.into() }) }
}
