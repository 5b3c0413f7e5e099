"""Reads a Parquet file with one of three readers ferry did not write (pyarrow, duckdb,
polars) and prints, as JSON: the file's schema (logical types, as pyarrow reads the footer)
and every row, with decimals as exact text and timestamps as integer microseconds."""
import decimal
import json
import sys

path, reader = sys.argv[1], sys.argv[2]


def plain(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


def micros(dt):
    import datetime
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (dt - epoch) // datetime.timedelta(microseconds=1)


def pyarrow_rows():
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pq.read_table(path)
    rows = []
    for row in table.to_pylist():
        rows.append({k: micros(v) if hasattr(v, "tzinfo") and v is not None else plain(v) for k, v in row.items()})
    return rows


def duckdb_rows():
    import duckdb
    con = duckdb.connect()
    cols = con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))", [path]).fetchall()
    exprs = []
    for name, ty in cols:
        q = '"' + name.replace('"', '""') + '"'
        if ty.startswith("TIMESTAMP"):
            exprs.append(f"epoch_us({q}) AS {q}")
        elif ty.startswith("DECIMAL"):
            exprs.append(f"CAST({q} AS VARCHAR) AS {q}")
        else:
            exprs.append(q)
    cur = con.execute(f"SELECT {', '.join(exprs)} FROM read_parquet(?)", [path])
    names = [d[0] for d in cur.description]
    return [{n: plain(v) for n, v in zip(names, row)} for row in cur.fetchall()]


def polars_rows():
    import polars as pl
    df = pl.read_parquet(path)
    df = df.with_columns([pl.col(n).dt.epoch("us") for n, t in df.schema.items() if isinstance(t, pl.Datetime)])
    return [{k: plain(v) for k, v in row.items()} for row in df.iter_rows(named=True)]


def schema():
    import pyarrow.parquet as pq
    f = pq.ParquetFile(path)
    s = f.schema
    meta = f.metadata
    out = {"_compression": meta.row_group(0).column(0).compression if meta.num_row_groups else None, "_row_groups": meta.num_row_groups}
    for i in range(len(s)):
        c = s.column(i)
        out[c.name] = {"physical": c.physical_type, "logical": str(c.logical_type), "nullable": c.max_definition_level > 0}
    return out


rows = {"pyarrow": pyarrow_rows, "duckdb": duckdb_rows, "polars": polars_rows}[reader]()
print(json.dumps({"schema": schema(), "rows": rows}))
