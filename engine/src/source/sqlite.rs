//! SQLite, the embedded platform database.
//!
//! Each read runs on its own thread with its own read-only connection and hands batches
//! over a channel two deep: the next batch is read while the plugin works on this one,
//! and a slow plugin stops the reader instead of letting rows pile up.
//!
//! Every read of one source sees the same moment of the database (issue 19), however
//! long the run and however much the platform writes meanwhile. In WAL mode, `open`
//! starts a read transaction on a holder connection and takes its snapshot
//! (`sqlite3_snapshot_get`); every read then opens that snapshot
//! (`sqlite3_snapshot_open`), and the holder's open transaction keeps the WAL from being
//! checkpointed past it. In rollback-journal mode there are no snapshots: the holder
//! keeps a shared lock for the source's life, so the database cannot change during the
//! export, and the platform's writers wait (or time out) until it ends.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, ffi};

use super::row_batch::BATCH_BYTES;
use super::{
    Cells, ChannelStream, Consistency, Range, RecordStream, RowBatchBuilder, RowStream, Source, SourceError, TableQuery, quote_ident,
    spawn_reader,
};
use crate::records::RecordEncoder;

#[derive(Debug, Clone)]
pub struct SqliteSource {
    path: PathBuf,
    /// The database stores text as UTF-8 (`PRAGMA encoding`), so readers can take its
    /// bytes as they are; UTF-16 databases get their text converted by SQLite.
    utf8: bool,
    /// The moment every read sees; `None` only while `open` checks the file.
    pin: Option<Arc<Pin>>,
}

/// The holder connection and, in WAL mode, the snapshot taken in its read transaction.
struct Pin {
    /// Null in rollback-journal mode, where the holder's shared lock is the pin.
    snapshot: *mut ffi::sqlite3_snapshot,
    /// Kept open (in its read transaction) for the source's life; never used again.
    _holder: Mutex<Connection>,
}

// SAFETY: the snapshot is an immutable record of a WAL position: SQLite only reads it
// (`sqlite3_snapshot_open`, from any connection and thread) until `Drop` frees it.
unsafe impl Send for Pin {}
unsafe impl Sync for Pin {}

impl Drop for Pin {
    fn drop(&mut self) {
        if !self.snapshot.is_null() {
            // SAFETY: taken by `sqlite3_snapshot_get`, freed once; no read is using it
            // any more (each holds an `Arc` of this pin).
            unsafe { ffi::sqlite3_snapshot_free(self.snapshot) };
        }
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.snapshot.is_null() { "Pin(shared lock)" } else { "Pin(wal snapshot)" })
    }
}

impl SqliteSource {
    /// Opens (and checks) an existing database; never creates one. Every read of the
    /// source sees the database as it is now (see the module docs).
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        if !path.is_file() {
            return Err(SourceError::Missing { path: path.into() });
        }
        let mut source = SqliteSource { path: path.into(), utf8: true, pin: None };
        let conn = source.connect()?;
        // Reading the schema fails early on a file that is not a database.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .map_err(|e| SourceError::Open { path: path.into(), source: e })?;
        let encoding: String =
            conn.query_row("PRAGMA encoding", [], |r| r.get(0)).map_err(|e| SourceError::Open { path: path.into(), source: e })?;
        source.utf8 = encoding == "UTF-8";
        drop(conn);
        source.pin = Some(Arc::new(source.take_pin()?));
        Ok(source)
    }

    /// Starts the holder's read transaction and, in WAL mode, takes its snapshot.
    fn take_pin(&self) -> Result<Pin, SourceError> {
        let holder = self.connect()?;
        let err = |e| SourceError::Open { path: self.path.clone(), source: e };
        let mode: String = holder.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(err)?;
        // The first read inside BEGIN starts the read transaction (and takes the shared lock).
        holder.execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;").map_err(err)?;
        let mut snapshot = std::ptr::null_mut();
        if mode.eq_ignore_ascii_case("wal") {
            let mut rc = snapshot_get(&holder, &mut snapshot);
            if rc == ffi::SQLITE_ERROR {
                // SQLite takes no snapshot of a WAL no transaction was written to since it
                // was created (a database every connection had closed): write one that
                // changes nothing, then take it again.
                holder.execute_batch("COMMIT").map_err(err)?;
                self.write_nothing().map_err(|e| SourceError::Open { path: self.path.clone(), source: e.with_hint() })?;
                holder.execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;").map_err(err)?;
                rc = snapshot_get(&holder, &mut snapshot);
            }
            if rc != ffi::SQLITE_OK {
                return Err(err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some("sqlite3_snapshot_get failed".into()))));
            }
        }
        Ok(Pin { snapshot, _holder: Mutex::new(holder) })
    }

    /// One transaction that rewrites the header's `user_version` with its own value: the
    /// database is unchanged, and its WAL holds a transaction to take a snapshot of.
    fn write_nothing(&self) -> Result<(), Hinted> {
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(Hinted)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(Hinted)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(Hinted)?;
        conn.execute_batch(&format!("BEGIN IMMEDIATE; PRAGMA user_version = {version}; COMMIT;")).map_err(Hinted)
    }

    /// A connection whose reads all see the pinned moment.
    fn connect_pinned(&self) -> Result<Connection, SourceError> {
        let conn = self.connect()?;
        let Some(pin) = self.pin.as_ref().filter(|p| !p.snapshot.is_null()) else { return Ok(conn) };
        let err = |e| SourceError::Open { path: self.path.clone(), source: e };
        conn.execute_batch("BEGIN").map_err(err)?;
        // SAFETY: an open connection outside a read transaction (BEGIN is deferred); the
        // snapshot lives as long as `pin`, which outlives this call.
        let rc = unsafe { ffi::sqlite3_snapshot_open(conn.handle(), c"main".as_ptr(), pin.snapshot) };
        if rc != ffi::SQLITE_OK {
            let why = "the database moved past the run's snapshot (was the WAL checkpointed or the file replaced?); run the export again";
            return Err(err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(why.into()))));
        }
        Ok(conn)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, SourceError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(|e| SourceError::Open { path: self.path.clone(), source: e })?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| SourceError::Open { path: self.path.clone(), source: e })?;
        // A small page cache: reads are sequential scans, an index walk or a count, which
        // revisit only the few interior pages, so SQLite's default 2 MiB per connection
        // bought no speed (measured: the same time for a full scan and a 3-month index
        // window of 5M transactions) and, one per concurrent read, added to peak RSS
        // only once tables outgrew it (issue 5).
        conn.pragma_update(None, "cache_size", -256i64) // KiB
            .map_err(|e| SourceError::Open { path: self.path.clone(), source: e })?;
        Ok(conn)
    }
}

/// `sqlite3_snapshot_get` on a connection in a read transaction.
fn snapshot_get(conn: &Connection, snapshot: &mut *mut ffi::sqlite3_snapshot) -> i32 {
    // SAFETY: an open connection in a read transaction, used by this thread only.
    unsafe { ffi::sqlite3_snapshot_get(conn.handle(), c"main".as_ptr(), snapshot) }
}

/// A failure to write the one empty transaction a snapshot needs.
struct Hinted(rusqlite::Error);

impl Hinted {
    fn with_hint(self) -> rusqlite::Error {
        let why = format!(
            "{}; the WAL database has no transaction in its WAL yet, so ferry writes one that changes nothing \
             (user_version to itself) to pin one point in time: give ferry write access to the database and its directory",
            self.0
        );
        rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_CANTOPEN), Some(why))
    }
}

/// The SQL for a query, with `?1`/`?2` bound to the range. The range goes into the
/// WHERE clause, and rows come in the range column's order, so SQLite walks an index
/// on that column instead of scanning the table.
fn build_sql(query: &TableQuery, select: &str) -> Result<(String, Vec<i64>), SourceError> {
    let table = quote_ident(query.table)?;
    let mut sql = format!("SELECT {select} FROM {table}");
    let mut params = Vec::new();
    let mut conds = Vec::new();
    if let Some(Range { column, end: Some(as_of), .. }) = query.created_before {
        // Only numbers are compared with as_of: a creation time that is text or NULL is
        // read, so the copy or the plugin fails on it naming the row, instead of SQLite
        // ordering text after every number and dropping the row unseen.
        let col = quote_ident(column)?;
        params.push(as_of);
        conds.push(format!("({col} < ?{} OR typeof({col}) NOT IN ('integer', 'real'))", params.len()));
    }
    if let Some(Range { column, start: None, end: Some(end) }) = query.shard {
        // The first shard also holds the rows the as-of cut keeps unvalued.
        let col = quote_ident(column)?;
        params.push(end);
        conds.push(format!("({col} < ?{} OR typeof({col}) NOT IN ('integer', 'real'))", params.len()));
    }
    let shard = query.shard.iter().filter(|r| r.start.is_some());
    for range in query.range.iter().chain(shard) {
        let col = quote_ident(range.column)?;
        if let Some(start) = range.start {
            params.push(start);
            conds.push(format!("{col} >= ?{}", params.len()));
        }
        if let Some(end) = range.end {
            params.push(end);
            conds.push(format!("{col} < ?{}", params.len()));
        }
    }
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    Ok((sql, params))
}

/// Whether `query`'s window is selective enough to walk its column's index (`None`: the
/// query has no window). The window's share of the column's span of values comes from
/// its min and max (two index lookups); counting the window's rows instead walked the
/// index over the whole window before the first row was read: 0.2 s for "all" on 1M
/// transactions.
fn window_selective(conn: &Connection, query: &TableQuery) -> Result<Option<bool>, SourceError> {
    let Some(range) = &query.range else { return Ok(None) };
    let col = quote_ident(range.column)?;
    // As reals: a plan needs no exact bounds, and a stray non-integer must not fail it.
    let (min, max): (Option<f64>, Option<f64>) = conn
        // Two subqueries: SQLite answers a lone min() or max() from the index, but scans
        // the table for both in one SELECT.
        .query_row(
            &format!("SELECT (SELECT min({col}) FROM {table}), (SELECT max({col}) FROM {table})", table = quote_ident(query.table)?),
            [],
            |r| Ok((r.get(0).ok(), r.get(1).ok())),
        )
        .map_err(|e| SourceError::Query { table: query.table.into(), source: e })?;
    Ok(Some(super::selective(range, min, max)))
}

/// `sql` reading its table without an index: a wide window is a table scan.
fn not_indexed(sql: &str, table: &str) -> Result<String, SourceError> {
    let table = quote_ident(table)?;
    Ok(sql.replacen(&format!("FROM {table}"), &format!("FROM {table} NOT INDEXED"), 1))
}

/// The full SELECT for a read, and its parameters.
fn select_sql(conn: &Connection, query: &TableQuery) -> Result<(String, Vec<i64>), SourceError> {
    let select = query.columns.iter().map(|c| quote_ident(c)).collect::<Result<Vec<_>, _>>()?.join(", ");
    let (mut sql, params) = build_sql(query, &select)?;
    match (query.order_by, &query.range) {
        (Some(col), _) => sql.push_str(&format!(" ORDER BY {}, rowid", quote_ident(col)?)),
        (None, Some(range)) if window_selective(conn, query)? == Some(true) => {
            sql.push_str(&format!(" ORDER BY {}, rowid", quote_ident(range.column)?));
        }
        (None, Some(_)) => {
            sql = not_indexed(&sql, query.table)?;
            sql.push_str(" ORDER BY rowid");
        }
        (None, None) => sql.push_str(" ORDER BY rowid"),
    }
    Ok((sql, params))
}

/// A count or the cut points' sample: like a read, a window spanning most of its
/// column's values scans the table instead of walking the window's index with one table
/// lookup per row (measured on 1M transactions, months = "all": a count 4.7 s through
/// the index against 0.34 s as a scan, most of a run's start-up; a shard's cut points
/// 11 s against 0.6 s).
fn scan_sql(conn: &Connection, query: &TableQuery, select: &str) -> Result<(String, Vec<i64>), SourceError> {
    let (sql, params) = build_sql(query, select)?;
    match window_selective(conn, query)? {
        Some(false) => Ok((not_indexed(&sql, query.table)?, params)),
        _ => Ok((sql, params)),
    }
}

/// Refuses a read whose window column holds NULL, text or a blob in any row. SQLite
/// compares such a value with the integer bounds without complaint (NULL is in no range,
/// text and blobs sort above every number), so the row would silently be in no window.
/// Each probe is answered from an index on the column when there is one (`IS NULL` and
/// `>= ''` are both ranges of the index, which sorts NULL first and text after numbers).
fn check_window_values(conn: &Connection, query: &TableQuery) -> Result<(), SourceError> {
    let Some(range) = query.range.filter(|r| r.start.is_some() || r.end.is_some()) else { return Ok(()) };
    let (table, col) = (quote_ident(query.table)?, quote_ident(range.column)?);
    let err = |e| SourceError::Query { table: query.table.into(), source: e };
    for cond in ["IS NULL", ">= ''"] {
        let sql = format!(
            "SELECT rowid, CASE typeof({col}) WHEN 'null' THEN 'NULL' WHEN 'text' THEN 'text ' || quote(substr({col}, 1, 40)) \
             ELSE 'a blob of ' || length({col}) || ' bytes' END FROM {table} WHERE {col} {cond} LIMIT 1"
        );
        let found: Option<(i64, String)> = conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(err)?;
        if let Some((rowid, value)) = found {
            return Err(SourceError::WindowValue {
                table: query.table.into(),
                column: range.column.into(),
                row: format!("row with rowid {rowid}"),
                value,
                expected: "an integer (microseconds since 1970)",
            });
        }
    }
    Ok(())
}

impl SqliteSource {
    /// SQLite's plan for a read (`EXPLAIN QUERY PLAN`), one step per line: how a range
    /// filter is pushed down (`SEARCH ... USING INDEX`) rather than scanned.
    pub fn query_plan(&self, query: &TableQuery) -> Result<String, SourceError> {
        let conn = self.connect_pinned()?;
        let (sql, params) = select_sql(&conn, query)?;
        let err = |e| SourceError::Query { table: query.table.into(), source: e };
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).map_err(err)?;
        let steps = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err)?;
        Ok(steps.join("\n"))
    }
}

impl Source for SqliteSource {
    fn columns(&self, table: &str) -> Result<Option<Vec<String>>, SourceError> {
        let conn = self.connect()?;
        let mut stmt =
            conn.prepare("SELECT name FROM pragma_table_info(?1)").map_err(|e| SourceError::Query { table: table.into(), source: e })?;
        let cols = stmt
            .query_map([table], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| SourceError::Query { table: table.into(), source: e })?;
        Ok(if cols.is_empty() { None } else { Some(cols) })
    }

    fn count(&self, query: &TableQuery) -> Result<u64, SourceError> {
        let conn = self.connect_pinned()?;
        let (sql, params) = scan_sql(&conn, query, "count(*)")?;
        conn.query_row(&sql, rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| SourceError::Query { table: query.table.into(), source: e })
    }

    fn open(&self, query: &TableQuery) -> Result<Box<dyn RowStream>, SourceError> {
        Ok(Box::new(self.start(query, RowBatchBuilder::with_capacity(BATCH_BYTES + 4096))?))
    }

    fn sample_sorted(&self, query: &TableQuery, column: &str, one_in: u64) -> Result<Vec<i64>, SourceError> {
        let col = quote_ident(column)?;
        let conn = self.connect_pinned()?;
        let (sql, mut params) = scan_sql(&conn, query, &col)?;
        let m = super::SAMPLE_MODULUS;
        params.push(super::sample_threshold(one_in));
        let sampled = format!("typeof({col}) IN ('integer', 'real') AND ((CAST({col} AS INTEGER) % {m}) + {m}) % {m} < ?{}", params.len());
        let glue = if sql.contains(" WHERE ") { " AND " } else { " WHERE " };
        let sql = format!("{sql}{glue}{sampled} ORDER BY {col}");
        let err = |e| SourceError::Query { table: query.table.into(), source: e };
        let mut stmt = conn.prepare(&sql).map_err(err)?;
        // Integers exactly (an f64 would round past 2^53); reals as the as-of cut compares them.
        let value = |r: &rusqlite::Row| match r.get_ref(0)? {
            ValueRef::Integer(i) => Ok(i),
            other => Ok(other.as_f64()? as i64),
        };
        stmt.query_map(rusqlite::params_from_iter(params), value).and_then(|rows| rows.collect()).map_err(err)
    }

    fn open_records(&self, query: &TableQuery, encoder: RecordEncoder) -> Result<Box<dyn RecordStream>, SourceError> {
        Ok(Box::new(self.start(query, encoder)?))
    }

    fn consistency(&self) -> Consistency {
        match &self.pin {
            Some(pin) if !pin.snapshot.is_null() => Consistency::SqliteSnapshot,
            Some(_) => Consistency::SqliteSharedLock,
            None => Consistency::PerRead,
        }
    }
}

impl SqliteSource {
    /// Starts the reader thread writing the query's rows into `cells`.
    fn start<C: Cells>(&self, query: &TableQuery, cells: C) -> Result<ChannelStream<C::Batch>, SourceError> {
        let conn = self.connect_pinned()?;
        // The reader holds the pin too: the snapshot outlives every read that opened it.
        let pin = self.pin.clone();
        let (sql, params) = select_sql(&conn, query)?;
        // Prepare here so a bad query is reported by `open`, not by the first batch.
        conn.prepare(&sql).map_err(|e| SourceError::Query { table: query.table.into(), source: e })?;
        check_window_values(&conn, query)?;
        let table = query.table.to_string();
        let ncols = query.columns.len();
        let utf8 = self.utf8;
        Ok(spawn_reader(format!("ferry-read-{table}"), query.table, cells, move |sink| {
            let _pin = pin;
            let err = |e| SourceError::Query { table: table.clone(), source: e };
            let mut stmt = RawStatement::prepare(&conn, &sql, &params, utf8).map_err(err)?;
            while stmt.step().map_err(err)? {
                for i in 0..ncols {
                    let cells = &mut sink.cells;
                    match stmt.cell(i) {
                        ValueRef::Null => cells.null(),
                        ValueRef::Integer(v) => cells.integer(v),
                        ValueRef::Real(v) => cells.real(v),
                        ValueRef::Text(t) => match as_text(t) {
                            Some(s) => cells.text(s),
                            None => cells.bad_text(t),
                        },
                        ValueRef::Blob(b) => cells.blob(b),
                    }
                }
                if !sink.end_row()? {
                    break;
                }
            }
            Ok(())
        }))
    }
}

/// `t` as text, if it is UTF-8. Most source text is ASCII, which a word-at-a-time check
/// inlined here settles without the call into the full validator.
#[inline(always)]
fn as_text(t: &[u8]) -> Option<&str> {
    if t.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(t) })
    } else {
        std::str::from_utf8(t).ok()
    }
}

/// A read-only statement stepped through SQLite's C API, for the one loop that touches
/// every cell. rusqlite's `get_ref` makes five C calls per cell, and its text goes
/// through `sqlite3_column_text`, which copies each string to add a NUL terminator;
/// `sqlite3_column_value` then `sqlite3_value_blob` hand out the bytes in place
/// (measured: a quarter of the reader thread's time on 1M transactions).
struct RawStatement<'c> {
    stmt: *mut ffi::sqlite3_stmt,
    conn: &'c Connection,
    /// Text is stored as UTF-8: its bytes can be taken as they are.
    utf8: bool,
}

impl<'c> RawStatement<'c> {
    fn prepare(conn: &'c Connection, sql: &str, params: &[i64], utf8: bool) -> rusqlite::Result<Self> {
        let sql = std::ffi::CString::new(sql).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `conn` is open and used by this thread only; `stmt` is finalized on drop.
        let rc = unsafe { ffi::sqlite3_prepare_v2(conn.handle(), sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut()) };
        let raw = RawStatement { stmt, conn, utf8 };
        raw.check(rc)?;
        for (i, &v) in params.iter().enumerate() {
            // SAFETY: a live statement; SQLite checks the parameter index.
            raw.check(unsafe { ffi::sqlite3_bind_int64(raw.stmt, i as i32 + 1, v) })?;
        }
        Ok(raw)
    }

    fn check(&self, rc: i32) -> rusqlite::Result<()> {
        if rc == ffi::SQLITE_OK {
            return Ok(());
        }
        // SAFETY: the connection is open; the message is copied before any other call.
        let message = unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(self.conn.handle())) }.to_string_lossy().into_owned();
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(message)))
    }

    /// Moves to the next row: `false` after the last.
    fn step(&mut self) -> rusqlite::Result<bool> {
        // SAFETY: a live statement, stepped by this thread only.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => self.check(rc).map(|_| false),
        }
    }

    /// Cell `i` of the current row; `i` must be below the statement's column count.
    fn cell(&self, i: usize) -> ValueRef<'_> {
        // SAFETY: called only after `step` returned a row and with `i` below the select
        // list's length. The value belongs to the statement's current row and is read
        // by this thread only (that is what makes an unprotected `sqlite3_value` safe);
        // the slices borrow `self`, so they end before the next `step`.
        unsafe {
            let v = ffi::sqlite3_column_value(self.stmt, i as i32);
            let bytes = |p: *const std::ffi::c_void| -> &[u8] {
                let n = ffi::sqlite3_value_bytes(v) as usize;
                if p.is_null() || n == 0 { &[] } else { std::slice::from_raw_parts(p.cast::<u8>(), n) }
            };
            match ffi::sqlite3_value_type(v) {
                ffi::SQLITE_INTEGER => ValueRef::Integer(ffi::sqlite3_value_int64(v)),
                ffi::SQLITE_FLOAT => ValueRef::Real(ffi::sqlite3_value_double(v)),
                // The text's bytes as stored, without the copy `sqlite3_value_text`
                // makes to terminate it; converted to UTF-8 only if stored otherwise.
                ffi::SQLITE_TEXT if self.utf8 => ValueRef::Text(bytes(ffi::sqlite3_value_blob(v))),
                ffi::SQLITE_TEXT => ValueRef::Text(bytes(ffi::sqlite3_value_text(v).cast())),
                ffi::SQLITE_BLOB => ValueRef::Blob(bytes(ffi::sqlite3_value_blob(v))),
                _ => ValueRef::Null,
            }
        }
    }
}

impl Drop for RawStatement<'_> {
    fn drop(&mut self) {
        // SAFETY: prepared by `prepare` (or null, which SQLite accepts) and finalized once.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Range;

    /// Text comes out as UTF-8 whichever encoding the database stores it in; NULLs,
    /// numbers and blobs as they are.
    #[test]
    fn cells_read_the_same_from_utf8_and_utf16_databases() {
        let dir = tempfile::tempdir().unwrap();
        let mut batches = Vec::new();
        for encoding in ["UTF-8", "UTF-16le", "UTF-16be"] {
            let db = dir.path().join(format!("{encoding}.db"));
            let conn = Connection::open(&db).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA encoding = '{encoding}';
                 CREATE TABLE t (a TEXT, b INTEGER, c REAL, d BLOB);
                 INSERT INTO t VALUES ('héllo 日本', -7, 1.5, x'00ff'), (NULL, NULL, NULL, NULL), ('', 0, 0.0, x'');"
            ))
            .unwrap();
            drop(conn);
            let source = SqliteSource::open(&db).unwrap();
            assert_eq!(source.utf8, encoding == "UTF-8");
            let columns: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
            let query = TableQuery { table: "t", columns: &columns, range: None, order_by: None, created_before: None, shard: None };
            let mut stream = source.open(&query).unwrap();
            batches.push(stream.next_batch().unwrap().unwrap());
            assert!(stream.next_batch().unwrap().is_none());
        }
        let mut expected = RowBatchBuilder::with_capacity(64);
        expected.text("héllo 日本");
        expected.integer(-7);
        expected.real(1.5);
        expected.blob(&[0, 0xff]);
        expected.end_row();
        (0..4).for_each(|_| expected.null());
        expected.end_row();
        expected.text("");
        expected.integer(0);
        expected.real(0.0);
        expected.blob(&[]);
        expected.end_row();
        let expected = expected.finish();
        for batch in batches {
            assert_eq!(batch, expected);
        }
    }

    /// The cut points' sample: every numeric value, sorted, for 1 in 1; for 1 in k the
    /// values whose residue mod the prime is below its k-th part, whatever the rows'
    /// order on disk (two tables, same values, inserted in opposite orders).
    #[test]
    fn the_shard_sample_depends_on_the_values_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE a (c INTEGER); CREATE TABLE b (c INTEGER); BEGIN;").unwrap();
        let values: Vec<i64> =
            (0..5000i64).map(|i| (i * 7_919_993_123 + 1_700_000_000_000_000) % 2_000_000_000_000_000 - 10_000_000).collect();
        for v in &values {
            conn.execute("INSERT INTO a VALUES (?1)", [v]).unwrap();
        }
        for v in values.iter().rev() {
            conn.execute("INSERT INTO b VALUES (?1)", [v]).unwrap();
        }
        conn.execute_batch("INSERT INTO a VALUES (NULL), ('text'); INSERT INTO b VALUES (2.5e3); COMMIT;").unwrap();
        drop(conn);
        let source = SqliteSource::open(&db).unwrap();
        let columns = vec!["c".to_string()];
        let query = |table| TableQuery { table, columns: &columns, range: None, order_by: None, created_before: None, shard: None };
        let mut all = values.clone();
        all.sort();
        assert_eq!(source.sample_sorted(&query("a"), "c", 1).unwrap(), all, "1 in 1: every numeric value, sorted");
        let threshold = crate::source::sample_threshold(10);
        let m = crate::source::SAMPLE_MODULUS;
        let expected: Vec<i64> = all.iter().copied().filter(|v| v.rem_euclid(m) < threshold).collect();
        let sampled = source.sample_sorted(&query("a"), "c", 10).unwrap();
        assert_eq!(sampled, expected);
        assert!((300..700).contains(&sampled.len()), "about 1 in 10: {}", sampled.len());
        let other: Vec<i64> = source.sample_sorted(&query("b"), "c", 10).unwrap().into_iter().filter(|v| *v != 2500).collect();
        assert_eq!(other, sampled, "the same values in another order on disk give the same sample");
    }

    /// Every read of one source sees the moment it was opened, while another
    /// connection keeps writing (WAL); the bundled SQLite has snapshots compiled in.
    #[test]
    fn reads_see_the_moment_the_source_was_opened() {
        // SAFETY: a static, NUL-terminated option name.
        assert_eq!(
            unsafe { ffi::sqlite3_compileoption_used(c"ENABLE_SNAPSHOT".as_ptr()) },
            1,
            "LIBSQLITE3_FLAGS lost SQLITE_ENABLE_SNAPSHOT"
        );
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let writer = Connection::open(&db).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1), (2);").unwrap();
        let source = SqliteSource::open(&db).unwrap();
        assert_eq!(source.consistency(), Consistency::SqliteSnapshot);
        let columns = vec!["a".to_string()];
        let query = TableQuery { table: "t", columns: &columns, range: None, order_by: None, created_before: None, shard: None };
        for round in 0..3 {
            writer.execute("INSERT INTO t VALUES (?1)", [10 + round]).unwrap();
            writer.execute("DELETE FROM t WHERE a = 1", []).unwrap();
            // A checkpoint cannot move the database past the pinned snapshot.
            writer.execute_batch("PRAGMA wal_checkpoint(PASSIVE);").unwrap();
            assert_eq!(source.count(&query).unwrap(), 2, "round {round}");
            let mut stream = source.open(&query).unwrap();
            assert_eq!(stream.next_batch().unwrap().unwrap().rows, 2);
        }
        // A new source sees the new state.
        assert_eq!(SqliteSource::open(&db).unwrap().count(&query).unwrap(), 4);
    }

    /// In rollback-journal mode the source holds a shared lock: a writer cannot commit
    /// until the source is dropped.
    #[test]
    fn rollback_journal_databases_are_held_still_by_a_shared_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let writer = Connection::open(&db).unwrap();
        writer.execute_batch("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);").unwrap();
        let source = SqliteSource::open(&db).unwrap();
        assert_eq!(source.consistency(), Consistency::SqliteSharedLock);
        writer.busy_timeout(std::time::Duration::from_millis(50)).unwrap();
        assert!(writer.execute("INSERT INTO t VALUES (2)", []).is_err(), "the writer committed under the source's lock");
        drop(source);
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
    }

    #[test]
    fn a_window_is_pushed_into_the_query_and_uses_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE transactions (guid TEXT, transacted_at INTEGER);
             CREATE INDEX transactions_transacted_at ON transactions (transacted_at);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
             INSERT INTO transactions SELECT 'g' || i, i * 10 FROM n;",
        )
        .unwrap();
        drop(conn);
        let source = SqliteSource::open(&db).unwrap();
        let columns = vec!["guid".to_string()];
        let query = TableQuery {
            table: "transactions",
            columns: &columns,
            range: Some(Range { column: "transacted_at", start: Some(200), end: Some(400) }),
            order_by: None,
            created_before: None,
            shard: None,
        };
        let plan = source.query_plan(&query).unwrap();
        assert!(plan.contains("USING INDEX transactions_transacted_at"), "{plan}");
        assert!(!plan.contains("SCAN"), "{plan}");
        assert_eq!(source.count(&query).unwrap(), 20);
        let mut stream = source.open(&query).unwrap();
        let batch = stream.next_batch().unwrap().unwrap();
        assert_eq!(batch.rows, 20);
        assert!(stream.next_batch().unwrap().is_none());

        // A window holding most of the table is a sequential scan, still filtered in SQL.
        let wide = TableQuery { range: Some(Range { column: "transacted_at", start: None, end: Some(905) }), ..query };
        let plan = source.query_plan(&wide).unwrap();
        assert!(plan.contains("SCAN transactions") && !plan.contains("INDEX"), "{plan}");
        let mut stream = source.open(&wide).unwrap();
        assert_eq!(stream.next_batch().unwrap().unwrap().rows, 90);
        assert!(stream.next_batch().unwrap().is_none());

        // Counts follow the same rule: through the index when selective, a scan when wide
        // (with the as-of cut's column outside the index, the index costs a lookup a row).
        let count_plan = |q: &TableQuery| {
            let conn = source.connect_pinned().unwrap();
            let (sql, params) = scan_sql(&conn, q, "count(*)").unwrap();
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .join("\n")
        };
        let plan = count_plan(&query);
        assert!(plan.contains("USING") && plan.contains("INDEX transactions_transacted_at"), "{plan}");
        let plan = count_plan(&wide);
        assert!(plan.contains("SCAN transactions") && !plan.contains("INDEX"), "{plan}");
        assert_eq!(source.count(&wide).unwrap(), 90);
    }
}
