#!/usr/bin/env python3
"""Scale-out benchmark (issue 21): balance and the speed-up model of `ferry run --shard i/N`.

    target/py/bin/python benches/shards.py [--scale 10] [--shards 4] [--parts 1000] [--ferry PATH]

On a generated demo platform it runs the job once in one process, then its N shards one
after another on this machine (so each shard's wall time is measured alone, not sharing
the cores with the others), then `ferry assemble`. It prints:
  - rows per shard (all resources, and per resource that is cut) and max/mean;
  - each shard's wall time, the total work (their sum) and the slowest shard;
  - the assemble time of this run, and of a synthetic snapshot of --parts tar parts
    (shard manifests cloned from a real one, each listing its parts; assemble reads and
    checks every manifest and stats every part, then the catalog records it);
  - the load average (the machine may be shared: wall times are only as good as it);
  - the speed-up model on N machines: total work / (slowest shard + assemble at --parts),
    beside single-process wall / (slowest shard + assemble).
Without --ferry it builds the release binary (cargo build --release). Figures are
printed, never asserted.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e import AS_OF, ROOT, ferry_bin, platform  # noqa: E402

TABLES = ["users", "members", "accounts", "transactions", "devices", "goals", "notification_profiles"]
SNAPSHOT = "00000000-0000-4000-8000-00000000be4c"  # --snapshot-id takes a UUID


def timed(cmd):
    started = time.perf_counter()
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{out.stderr}")
    return time.perf_counter() - started


def job_file(work, dir, name):
    job, out = work / f"{name}.toml", work / f"out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    resources = "".join(f'[[resource]]\nname = "{r}"\n' + ('months = "all"\n' if r == "transactions" else "") for r in TABLES)
    totals = ROOT / "target/wasm-plugins/wasm32-wasip2/release/ferry_example_category_totals.wasm"
    if totals.exists():  # an aggregate: runs whole on one shard
        resources += f'[[resource]]\nname = "category_totals"\nplugin = "{totals}"\nmonths = 6\n'
    job.write_text(
        f'[snapshot]\nname = "{name}"\nas_of = "{AS_OF}"\n[source]\nsqlite = "{dir}/platform.db"\nblobs = "{dir}/blobs"\n'
        f'[output]\ndir = "{out}"\nformat = "avro"\ngzip = true\npart_size = "64MiB"\n\n{resources}'
    )
    return job, out


def synthetic_assemble(ferry, template, parts, per_shard=4):
    """A snapshot of `parts` tar parts from parts // per_shard shards, cloned from `template`."""
    shards = max(1, parts // per_shard)
    root = Path(tempfile.mkdtemp(prefix="ferry-assemble-"))
    snap = root / SNAPSHOT
    (snap / "shards").mkdir(parents=True)
    base = json.loads(template.read_text())
    for i in range(shards):
        m = json.loads(json.dumps(base))
        m["shard"] = {"index": i, "count": shards}
        m["attempt"] = f"{i:032x}"
        for c in m["cuts"]:
            if c["column"] is not None:
                c["start"] = None if i == 0 else i * 1000
                c["end"] = None if i == shards - 1 else (i + 1) * 1000
            else:
                c["ran"] = i == 0
        archives, files = [], []
        for p in range(per_shard):
            name = f"snapshot_tables_part{p + 1}_x_shard{i:04}of{shards:04}.tar"
            (snap / name).write_bytes(b"\0" * 1024)
            archives.append({"name": name, "bytes": 1024, "sha256": "0" * 64, "kind": "tables", "part": p + 1})
            files.append({"path": f"users.shard{i:04}of{shards:04}-{p + 1:05}.avro.gz", "archive": name, "records": 1, "bytes": 1, "sha256": "0" * 64})
        m["manifest"]["archives"] = archives
        for r in m["manifest"]["resources"]:
            r["files"], r["records"] = (files, len(files)) if r["name"] == "users" else ([], 0)
        (snap / "shards" / f"shard-{i:04}-of-{shards:04}.{m['attempt']}.json").write_text(json.dumps(m))
    seconds = timed([ferry, "assemble", snap, "--shards", shards])
    shutil.rmtree(root)
    return shards, seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=10)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--parts", type=int, default=1000)
    ap.add_argument("--ferry", help="a ferry binary (default: build the release one)")
    ap.add_argument("--work", default=str(ROOT / "target/bench-shards"))
    args = ap.parse_args()
    ferry = Path(args.ferry).resolve() if args.ferry else ferry_bin()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FERRY_CACHE_DIR", str(work / "plugin-cache"))
    dir = platform(ferry, work, args.scale).resolve()

    job, out = job_file(work, dir, "single")
    single = timed([ferry, "run", "--progress", "none", job])
    load_single = os.getloadavg()

    job, out = job_file(work, dir, "sharded")
    n = args.shards
    walls = [timed([ferry, "run", "--progress", "none", "--snapshot-id", SNAPSHOT, "--shard", f"{i}/{n}", job]) for i in range(n)]
    snap = out / SNAPSHOT
    assemble = timed([ferry, "assemble", snap, "--shards", n])
    timed([ferry, "verify", snap])

    manifests = sorted((snap / "shards").glob("shard-*.json"))
    shard_docs = [json.loads(p.read_text()) for p in manifests]
    rows = [sum(r["records"] for r in d["manifest"]["resources"]) for d in shard_docs]
    print(f"platform scale {args.scale}, {n} shards, ferry {ferry}")
    print("load average (1, 5, 15 min) at the end of the shards: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'shard':>6} {'rows':>12} {'wall s':>9}")
    for i, (r, w) in enumerate(zip(rows, walls)):
        print(f"{i:>6} {r:>12,} {w:>9.2f}")
    mean = sum(rows) / n
    print(f"rows per shard: max/mean = {max(rows) / mean:.3f} (total {sum(rows):,})")
    cut = [c["resource"] for c in shard_docs[0]["cuts"] if c["column"] is not None]
    for name in cut:
        per = [next(r["records"] for r in d["manifest"]["resources"] if r["name"] == name) for d in shard_docs]
        m = sum(per) / n
        print(f"  {name:<24} {' '.join(f'{x:>9,}' for x in per)}  max/mean {max(per) / m if m else 1:.3f}")
    whole = [c["resource"] for c in shard_docs[0]["cuts"] if c["column"] is None]
    if whole:
        print(f"  run whole on one shard: {', '.join(whole)}")
    shards_synth, big = synthetic_assemble(ferry, manifests[0], args.parts)
    total, slowest = sum(walls), max(walls)
    print("load average after the single run: " + ", ".join(f"{x:.2f}" for x in load_single))
    print(f"single process: {single:.2f}s; shards one after another: total work {total:.2f}s, slowest {slowest:.2f}s")
    print(f"assemble: {assemble:.3f}s for this run; {big:.3f}s for {args.parts} parts ({shards_synth} shard manifests, synthetic)")
    print(f"speed-up model on {n} machines: total work / (slowest + assemble) = {total:.2f} / ({slowest:.2f} + {big:.3f}) = {total / (slowest + big):.2f}x; "
          f"single / (slowest + assemble) = {single / (slowest + big):.2f}x")


if __name__ == "__main__":
    main()
