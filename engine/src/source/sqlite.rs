//! SQLite, the embedded platform database.
//!
//! Each read runs on its own thread with its own read-only connection and hands batches
//! over a channel two deep: the next batch is read while the plugin works on this one,
//! and a slow plugin stops the reader instead of letting rows pile up.

use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::row_batch::BATCH_BYTES;
use super::{Cells, ChannelStream, RecordStream, RowBatchBuilder, RowStream, Source, SourceError, TableQuery, quote_ident};
use crate::records::RecordEncoder;

#[derive(Debug, Clone)]
pub struct SqliteSource {
    path: PathBuf,
}

impl SqliteSource {
    /// Opens (and checks) an existing database; never creates one.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        if !path.is_file() {
            return Err(SourceError::Missing { path: path.into() });
        }
        let source = SqliteSource { path: path.into() };
        let conn = source.connect()?;
        // Reading the schema fails early on a file that is not a database.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .map_err(|e| SourceError::Open { path: path.into(), source: e })?;
        Ok(source)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, SourceError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| SourceError::Open { path: self.path.clone(), source: e })?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| SourceError::Open { path: self.path.clone(), source: e })?;
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

/// The SQL for a query, with `?1`/`?2` bound to the range. The range goes into the
/// WHERE clause, and rows come in the range column's order, so SQLite walks an index
/// on that column instead of scanning the table.
fn build_sql(query: &TableQuery, select: &str) -> Result<(String, Vec<i64>), SourceError> {
    let table = quote_ident(query.table)?;
    let mut sql = format!("SELECT {select} FROM {table}");
    let mut params = Vec::new();
    if let Some(range) = &query.range {
        let col = quote_ident(range.column)?;
        let mut conds = Vec::new();
        if let Some(start) = range.start {
            params.push(start);
            conds.push(format!("{col} >= ?{}", params.len()));
        }
        if let Some(end) = range.end {
            params.push(end);
            conds.push(format!("{col} < ?{}", params.len()));
        }
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
    }
    Ok((sql, params))
}

/// A window is read through its index only when it is selective. The index hands rows
/// back in `transacted_at` order, one random table lookup each; for a window holding most
/// of the table (months = "all", 24 of 36 months) a sequential scan in rowid order with
/// the same WHERE clause is several times faster (measured: 1M transactions, "all",
/// 5.3 s of reader wait through the index). The filter stays in the SQL either way.
const INDEX_MAX_SHARE: u64 = 4; // use the index when the window holds <= 1/4 of the rows

/// The full SELECT for a read, and its parameters.
fn select_sql(conn: &Connection, query: &TableQuery) -> Result<(String, Vec<i64>), SourceError> {
    let select = query.columns.iter().map(|c| quote_ident(c)).collect::<Result<Vec<_>, _>>()?.join(", ");
    let (mut sql, params) = build_sql(query, &select)?;
    let err = |e| SourceError::Query { table: query.table.into(), source: e };
    let selective = || -> Result<bool, SourceError> {
        let (count_sql, count_params) = build_sql(query, "count(*)")?;
        let hits: i64 = conn.query_row(&count_sql, rusqlite::params_from_iter(count_params), |r| r.get(0)).map_err(err)?;
        let total: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", quote_ident(query.table)?), [], |r| r.get(0)).map_err(err)?;
        Ok((hits as u64) * INDEX_MAX_SHARE <= total as u64)
    };
    match (query.order_by, &query.range) {
        (Some(col), _) => sql.push_str(&format!(" ORDER BY {}, rowid", quote_ident(col)?)),
        (None, Some(range)) if selective()? => sql.push_str(&format!(" ORDER BY {}, rowid", quote_ident(range.column)?)),
        (None, Some(_)) => {
            let table = quote_ident(query.table)?;
            sql = sql.replacen(&format!("FROM {table}"), &format!("FROM {table} NOT INDEXED"), 1);
            sql.push_str(" ORDER BY rowid");
        }
        (None, None) => sql.push_str(" ORDER BY rowid"),
    }
    Ok((sql, params))
}

impl SqliteSource {
    /// SQLite's plan for a read (`EXPLAIN QUERY PLAN`), one step per line: how a range
    /// filter is pushed down (`SEARCH ... USING INDEX`) rather than scanned.
    pub fn query_plan(&self, query: &TableQuery) -> Result<String, SourceError> {
        let conn = self.connect()?;
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
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .map_err(|e| SourceError::Query { table: table.into(), source: e })?;
        let cols = stmt
            .query_map([table], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| SourceError::Query { table: table.into(), source: e })?;
        Ok(if cols.is_empty() { None } else { Some(cols) })
    }

    fn count(&self, query: &TableQuery) -> Result<u64, SourceError> {
        let (sql, params) = build_sql(query, "count(*)")?;
        let conn = self.connect()?;
        conn.query_row(&sql, rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| SourceError::Query { table: query.table.into(), source: e })
    }

    fn open(&self, query: &TableQuery) -> Result<Box<dyn RowStream>, SourceError> {
        Ok(Box::new(self.start(query, RowBatchBuilder::with_capacity(BATCH_BYTES + 4096))?))
    }

    fn open_records(&self, query: &TableQuery, encoder: RecordEncoder) -> Result<Box<dyn RecordStream>, SourceError> {
        Ok(Box::new(self.start(query, encoder)?))
    }
}

impl SqliteSource {
    /// Starts the reader thread writing the query's rows into `cells`.
    fn start<C: Cells>(&self, query: &TableQuery, cells: C) -> Result<ChannelStream<C::Batch>, SourceError> {
        let conn = self.connect()?;
        let (sql, params) = select_sql(&conn, query)?;
        // Prepare here so a bad query is reported by `open`, not by the first batch.
        conn.prepare(&sql).map_err(|e| SourceError::Query { table: query.table.into(), source: e })?;
        let (tx, stream) = ChannelStream::channel(query.table);
        let table = query.table.to_string();
        let ncols = query.columns.len();
        std::thread::Builder::new()
            .name(format!("ferry-read-{table}"))
            .spawn(move || {
                if let Err(e) = read_rows(&conn, &sql, &params, ncols, &table, cells, &tx) {
                    let _ = tx.send(Err(e));
                }
            })
            .expect("spawning a reader thread");
        Ok(stream)
    }
}

type Sender<B> = SyncSender<Result<Option<B>, SourceError>>;

fn read_rows<C: Cells>(conn: &Connection, sql: &str, params: &[i64], ncols: usize, table: &str, mut cells: C, tx: &Sender<C::Batch>) -> Result<(), SourceError> {
    let err = |e| SourceError::Query { table: table.into(), source: e };
    let mut stmt = conn.prepare(sql).map_err(err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        for i in 0..ncols {
            match row.get_ref(i).map_err(err)? {
                ValueRef::Null => cells.null(),
                ValueRef::Integer(v) => cells.integer(v),
                ValueRef::Real(v) => cells.real(v),
                ValueRef::Text(t) => match std::str::from_utf8(t) {
                    Ok(s) => cells.text(s),
                    Err(_) => cells.blob(t),
                },
                ValueRef::Blob(b) => cells.blob(b),
            }
        }
        cells.end_row().map_err(SourceError::Misfit)?;
        if cells.full() && tx.send(Ok(Some(cells.take()))).is_err() {
            return Ok(()); // the consumer has gone: stop quietly
        }
    }
    if cells.rows() > 0 && tx.send(Ok(Some(cells.take()))).is_err() {
        return Ok(());
    }
    // The explicit end: a reader that dies without sending it is an error, not an
    // empty remainder.
    let _ = tx.send(Ok(None));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Range;

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
    }
}
