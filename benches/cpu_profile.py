#!/usr/bin/env python3
"""Where an export's CPU goes: CPU-seconds per stage per million records (issue 23).

    python3 benches/cpu_profile.py [--scale 10] [--format avro] [--no-gzip] [--ferry PATH]

Runs the e2e benchmark's job (users, accounts, transactions from a generated platform)
once under `perf record -e task-clock` (Debian's linux-perf: installed when missing) and
sums the samples by thread. Ferry names its threads after their stage, so the table is:
  source    ferry-read-* (SQLite) / ferry-pg-*: reading rows and encoding them as records
  write     ferry-write-*: the format writer (Avro blocks, CSV, JSONL, Parquet)
  gzip      ferry-gzip-*: compression workers
  main      the run itself: plugins (wasm), validation, packing, the manifest
  other     everything else (the epoch ticker, start-up threads)
Figures are printed, never asserted; the total is checked against the kernel's own
accounting of the process (user + system seconds) so a sampling gap would show.
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e import ROOT, ferry_bin, ferry_job, platform  # noqa: E402

FREQ = 999
STAGES = [("source", r"^ferry-(read|pg)-"), ("write", r"^ferry-write-"), ("gzip", r"^ferry-gzip-"), ("main", r"^ferry$|^ferry-run|^main$")]


def ensure_perf():
    if shutil.which("perf"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "linux-perf"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def stage(comm, binary):
    if comm == binary[:15]:
        return "main"
    for name, pattern in STAGES:
        if re.search(pattern, comm):
            return name
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=10)
    ap.add_argument("--format", default="avro")
    ap.add_argument("--no-gzip", action="store_true")
    ap.add_argument("--ferry", help="a built ferry binary (default: cargo build --release)")
    ap.add_argument("--work", default=str(ROOT / "target/bench"))
    a = ap.parse_args()
    ensure_perf()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    ferry = Path(a.ferry) if a.ferry else ferry_bin()
    dir = platform(ferry, work, a.scale)
    job, out = ferry_job(work, dir, "profile", a.format, not a.no_gzip)
    with tempfile.TemporaryDirectory(prefix="ferry-perf-") as tmp:
        data = Path(tmp) / "perf.data"
        before = os.times()
        subprocess.run(["perf", "record", "-q", "-e", "task-clock", "-F", str(FREQ), "-o", data, "--", ferry, "run", "--progress", "none", job],
                       check=True, stdout=subprocess.DEVNULL)
        after = os.times()
        report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "comm", "-F", "sample,comm", "-q"],
                                check=True, capture_output=True, text=True).stdout
    snap = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    records = sum(r["records"] for r in json.loads((snap / "manifest.json").read_text())["resources"])
    seconds = collections.Counter()
    for line in report.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            seconds[stage(parts[1].strip(), ferry.name)] += int(parts[0]) / FREQ
    kernel = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    total = sum(seconds.values())
    per_m = 1e6 / records
    gz = "" if a.no_gzip else "+gzip"
    print(f"CPU profile: {a.format}{gz}, scale {a.scale:g}, {records:,} records ({ferry})")
    print(f"| {'stage':<8} | {'CPU s':>7} | {'CPU s per 1M records':>21} | {'share':>6} |")
    print(f"|{'-' * 10}|{'-' * 9}|{'-' * 23}|{'-' * 8}|")
    for name in ["source", "write", "gzip", "main", "other"]:
        s = seconds[name]
        print(f"| {name:<8} | {s:>7.2f} | {s * per_m:>21.2f} | {s / total:>6.1%} |")
    print(f"| {'total':<8} | {total:>7.2f} | {total * per_m:>21.2f} | {1:>6.0%} |")
    print(f"kernel's accounting of the run (user + system, perf included): {kernel:.2f} CPU s")


if __name__ == "__main__":
    main()
