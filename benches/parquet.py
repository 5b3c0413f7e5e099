#!/usr/bin/env python3
"""Parquet benchmark (issue 18): ferry against DuckDB and pyarrow on the same rows, in one run.

    target/py/bin/python benches/parquet.py [--scale 10] [--rss-scales 10,50] [--ferry PATH]

Needs the test venv (tests/run.sh makes it); the DuckDB SQLite scanner it also needs
(benches/requirements.txt) is installed into that venv when missing.
On a generated platform (scale 10 = about 1M transactions) it writes the transactions
table to one zstd Parquet file three ways:
  ferry    format = "parquet" (release build; exact DECIMAL/TIMESTAMP types)
  DuckDB   COPY (SELECT * FROM sqlite_scan(db, 'transactions')) TO f (FORMAT parquet, COMPRESSION zstd)
  pyarrow  a script: sqlite3 cursor batches of 100k rows -> pyarrow.parquet.ParquetWriter (zstd)
ferry and DuckDB alternated for --rounds rounds (pyarrow once: it is the slow peer), and
prints median wall seconds with the spread, records/s, file size and peak RSS; then ferry's peak RSS at each
of --rss-scales (flat memory: 1M vs 5M transactions). Figures are printed, never asserted.
DuckDB and the pyarrow script keep SQLite's own types (amounts stay text); ferry writes
the declared ones.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import duckdb_extension_sqlite_scanner  # noqa: F401
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(Path(__file__).resolve().parent / "requirements.txt")], check=True)
from e2e import AS_OF, ROOT, ferry_bin, platform, run  # noqa: E402

DUCKDB_SCRIPT = r'''
import pathlib, sys
import duckdb, duckdb_extension_sqlite_scanner as ext
db, out = sys.argv[1], sys.argv[2]
path = next(pathlib.Path(ext.__file__).parent.glob("extensions/*/sqlite_scanner.duckdb_extension"))
con = duckdb.connect()
con.execute(f"LOAD '{path}'")
con.execute(f"COPY (SELECT * FROM sqlite_scan('{db}', 'transactions')) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
'''

PYARROW_SCRIPT = r'''
import sqlite3, sys
import pyarrow as pa, pyarrow.parquet as pq
db, out = sys.argv[1], sys.argv[2]
cur = sqlite3.connect(db).execute("SELECT * FROM transactions")
names = [d[0] for d in cur.description]
writer = None
while True:
    rows = cur.fetchmany(100_000)
    if not rows:
        break
    table = pa.Table.from_pylist([dict(zip(names, r)) for r in rows])
    if writer is None:
        writer = pq.ParquetWriter(out, table.schema, compression="zstd")
    writer.write_table(table.cast(writer.schema))
writer.close()
'''


def ferry_parquet(ferry, work, dir, name):
    job, out = work / f"{name}.toml", work / f"out-{name}"
    subprocess.run(["rm", "-rf", out], check=True)
    job.write_text(
        f'[snapshot]\nname = "{name}"\nas_of = "{AS_OF}"\n[source]\nsqlite = "{dir}/platform.db"\n'
        f'[output]\ndir = "{out}"\nformat = "parquet"\narchive = "none"\n\n[[resource]]\nname = "transactions"\nmonths = "all"\n'
    )
    wall, rss = run([ferry, "run", "--progress", "none", job], stdout=subprocess.DEVNULL)
    snap = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    m = json.loads((snap / "manifest.json").read_text())
    r = m["resources"][0]
    return {"wall": wall, "rss": rss, "records": r["records"], "bytes": sum(f["bytes"] for f in r["files"])}


def script(work, name, text, dir):
    out = work / f"{name}.parquet"
    wall, rss = run([sys.executable, "-c", text, f"{dir}/platform.db", out])
    return {"wall": wall, "rss": rss, "bytes": out.stat().st_size}


def median_run(runs):
    """The run with the median wall time."""
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="ferry and DuckDB runs, alternated")
    ap.add_argument("--scale", type=float, default=10)
    ap.add_argument("--rss-scales", default="10,50")
    ap.add_argument("--ferry", help="a built ferry binary (default: cargo build --release)")
    ap.add_argument("--work", default=str(ROOT / "target/bench-parquet"))
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    ferry = Path(a.ferry) if a.ferry else ferry_bin()
    dir = platform(ferry, work, a.scale)
    fs, ds, ratios = [], [], []
    for _ in range(a.rounds):
        fs.append(ferry_parquet(ferry, work, dir, "pq"))
        ds.append(script(work, "duckdb", DUCKDB_SCRIPT, dir))
        ratios.append(ds[-1]["wall"] / fs[-1]["wall"])
    p = script(work, "pyarrow", PYARROW_SCRIPT, dir)
    f, d = median_run(fs), median_run(ds)
    n = f["records"]
    print(f"transactions, scale {a.scale:g}: {n:,} records exported by ferry (DuckDB and pyarrow copy the whole table)")
    print(f"ferry and DuckDB alternated {a.rounds} times: median wall (min-max); pyarrow ran once")
    print(f"| {'tool':<28} | {'wall s':>17} | {'records/s':>10} | {'file MiB':>8} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * 30}|{'-' * 19}|{'-' * 12}|{'-' * 10}|{'-' * 14}|")
    for name, r, runs in [("ferry parquet (zstd)", f, fs), ("DuckDB COPY sqlite_scan zstd", d, ds), ("pyarrow script (zstd)", p, [p])]:
        spread = f"{r['wall']:.2f} ({min(x['wall'] for x in runs):.2f}-{max(x['wall'] for x in runs):.2f})"
        print(f"| {name:<28} | {spread:>17} | {n / r['wall']:>10,.0f} | {r['bytes'] / 2**20:>8.1f} | {r['rss']:>12.0f} |")
    ratios.sort()
    print(f"ferry file is {f['bytes'] / d['bytes']:.2f}x DuckDB's; ferry is {ratios[len(ratios) // 2]:.2f}x DuckDB's speed "
          f"(median of the {a.rounds} paired ratios, {ratios[0]:.2f}-{ratios[-1]:.2f})")
    for s in [float(x) for x in a.rss_scales.split(",") if x]:
        r = ferry_parquet(ferry, work, platform(ferry, work, s), f"pq-s{s:g}")
        print(f"ferry parquet at scale {s:g}: {r['records']:,} records, {r['wall']:.2f}s, peak RSS {r['rss']:.0f} MiB")


if __name__ == "__main__":
    main()
