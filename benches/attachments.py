#!/usr/bin/env python3
"""Attachments benchmark: how fast ferry archives attachments, and at what memory.

    python3 benches/attachments.py [--scale 20] [--big-gib 2] [--archive tar|none]

Two runs of the release build on a generated platform:
  many  the demo's attachments at --scale (scale 20 = 4,000 files, ~8,000 versions of up
        to 48 KiB): small-file throughput, per-file costs dominate;
  big   one sparse blob of --big-gib GiB: streaming throughput (read, sha256, write) and
        the peak RSS, which must stay flat whatever the blob's size.
Prints, per run: versions, MB copied, wall seconds, MB/s, and the ferry process's peak
RSS (getrusage RUSAGE_CHILDREN). Figures are printed, never asserted.
"""

import argparse
import hashlib
import os
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# FERRY_BIN points at another build (the debug one, say) and skips the release build.
FERRY = Path(os.environ.get("FERRY_BIN", ROOT / "target" / "release" / "ferry"))


def job(dir: Path, name: str, archive: str) -> Path:
    path = dir / f"{name}.toml"
    path.write_text(
        f"""[snapshot]
name = "{name}"
as_of = "2026-03-31T14:30:22Z"
content = "attachments"

[source]
sqlite = "platform/platform.db"
blobs = "platform/blobs"

[output]
dir = "out-{name}"
archive = "{archive}"

[[resource]]
name = "attachments"
"""
    )
    return path


def measured(args) -> tuple[float, int]:
    """Wall seconds and the peak RSS (bytes) of one child; children run one at a time,
    so RUSAGE_CHILDREN's maximum after each is the largest so far: runs go small to big."""
    t = time.perf_counter()
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{r.stderr.decode()}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def copied(out: Path) -> tuple[int, int]:
    snap = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    m = json.loads((snap / "manifest.json").read_text())
    files = [f for r in m["resources"] for f in r["files"] if f.get("kind") == "attachment" and "/versions/" not in f["path"]]
    return len(files), sum(f["bytes"] for f in files)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=20)
    ap.add_argument("--big-gib", type=float, default=2)
    ap.add_argument("--archive", default="tar", choices=["tar", "none"])
    ap.add_argument("--rounds", type=int, default=3, help="big-blob runs of ferry and sha256sum, alternated")
    a = ap.parse_args()
    if "FERRY_BIN" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="ferry-att-bench-") as tmp:
        tmp = Path(tmp)
        subprocess.run([FERRY, "demo", "--out", tmp / "platform", "--scale", str(a.scale), "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
        rows = []
        wall, rss = measured([FERRY, "run", job(tmp, "many", a.archive)])
        n, b = copied(tmp / "out-many")
        rows.append(("many", n, b, wall, rss))
        shutil.rmtree(tmp / "out-many")

        size = int(a.big_gib * (1 << 30))
        blob = tmp / "platform" / "blobs" / "big" / "zeros"
        blob.parent.mkdir(parents=True, exist_ok=True)
        with open(blob, "wb") as f:
            f.truncate(size)
        h = hashlib.sha256()
        zeros = bytes(1 << 20)
        for _ in range(size >> 20):
            h.update(zeros)
        h.update(bytes(size & ((1 << 20) - 1)))
        db = sqlite3.connect(tmp / "platform" / "platform.db")
        db.execute("DELETE FROM attachment_versions")
        db.execute("DELETE FROM attachments")
        db.execute("INSERT INTO attachments VALUES ('ATT-BIG', 'big.iso', 'application/octet-stream', 'run', 'RUN-1', 0, 0)")
        db.execute("INSERT INTO attachment_versions VALUES ('VER-BIG', 'ATT-BIG', 1, ?, ?, 0, 'big/zeros')", (size, h.hexdigest()))
        db.commit()
        db.close()
        # ferry and `sha256sum` of the same blob, alternated: the peer reads and hashes,
        # ferry also writes the bytes into a part and hashes the part.
        walls, sums = [], []
        for _ in range(a.rounds):
            shutil.rmtree(tmp / "out-big", ignore_errors=True)
            wall, rss = measured([FERRY, "run", job(tmp, "big", a.archive)])
            walls.append(wall)
            t = time.perf_counter()
            subprocess.run(["sha256sum", blob], check=True, stdout=subprocess.DEVNULL)
            sums.append(time.perf_counter() - t)
        n, b = copied(tmp / "out-big")
        wall, peer = sorted(walls)[len(walls) // 2], sorted(sums)[len(sums) // 2]
        rows.append((f"big ({a.big_gib:g} GiB)", n, b, wall, rss))
        rows.append(("sha256sum (peer)", 1, size, peer, 0))
        ratios = sorted(s / w for w, s in zip(walls, sums))

    print(f"attachments benchmark (archive = {a.archive}, {FERRY})")
    print(f"{'run':<16}{'versions':>10}{'MB':>10}{'wall s':>9}{'MB/s':>9}{'peak RSS MiB':>14}")
    for name, n, b, wall, rss in rows:
        print(f"{name:<16}{n:>10}{b / 1e6:>10.1f}{wall:>9.2f}{b / 1e6 / wall:>9.1f}{rss / (1 << 20):>14.0f}")
    print(f"big blob, ferry's MB/s over sha256sum's, {a.rounds} alternated pairs: median {ratios[len(ratios) // 2]:.2f} "
          f"({ratios[0]:.2f}-{ratios[-1]:.2f}); peak RSS is the largest of all ferry runs so far")


if __name__ == "__main__":
    main()
