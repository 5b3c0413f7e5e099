#!/usr/bin/env python3
"""Encryption's cost (issue 19): the 1M-transaction export packed into tar parts, plain
against encrypted for an age recipient (`[output] encrypt_to`), alternated and repeated.

    python3 benches/encryption.py [--scale 10] [--repeat 5] [--ferry target/release/ferry]

Needs `age-keygen` (Debian's `age`, installed by tests/run.sh). Prints the median wall
time of each and the overhead; the target is <= 5%. Figures are printed, never asserted.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402  (the platform, the timed runner and the job layout)


def job(work, dir, name, extra):
    path, out = e2e.ferry_job(work, dir, name, "avro", True)
    # Tar parts (the default), as a delivered snapshot has them.
    path.write_text(path.read_text().replace('archive = "none"\n', extra))
    return path, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--work", default=str(e2e.ROOT / "target/bench"))
    ap.add_argument("--ferry", default=None, help="a built ferry (default: cargo build --release)")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ferry = Path(args.ferry) if args.ferry else e2e.ferry_bin()
    dir = e2e.platform(ferry, work, args.scale)
    key = work / "bench-age.txt"
    if not key.exists():
        subprocess.run(["age-keygen", "-o", key], check=True, stderr=subprocess.DEVNULL)
    recipient = subprocess.run(["age-keygen", "-y", key], check=True, capture_output=True, text=True).stdout.strip()

    plain, plain_out = job(work, dir, "tar-plain", "")
    sealed, sealed_out = job(work, dir, "tar-age", f'encrypt_to = ["{recipient}"]\n')
    e2e.run([ferry, "run", "--progress", "none", plain], stdout=subprocess.DEVNULL)  # warm the plugin cache
    walls = {"plain": [], "age": []}
    for _ in range(args.repeat):
        for name, path, out in [("plain", plain, plain_out), ("age", sealed, sealed_out)]:
            shutil.rmtree(out, ignore_errors=True)
            wall, rss = e2e.run([ferry, "run", "--progress", "none", path], stdout=subprocess.DEVNULL)
            walls[name].append(wall)
    snap = next(p for p in sealed_out.iterdir() if p.is_dir() and not p.name.startswith("."))
    size = sum(p.stat().st_size for p in snap.iterdir())
    median = lambda xs: sorted(xs)[len(xs) // 2]
    p, a = median(walls["plain"]), median(walls["age"])
    print(f"scale {args.scale}, {args.repeat} alternated runs each, tar parts of {size / 1e6:.1f} MB in all")
    print(f"plain tar parts:      median {p:.2f} s ({min(walls['plain']):.2f}-{max(walls['plain']):.2f})")
    print(f"age-encrypted parts:  median {a:.2f} s ({min(walls['age']):.2f}-{max(walls['age']):.2f})")
    print(f"encryption overhead: {100 * (a / p - 1):+.1f}% of wall time (target <= 5%)")


if __name__ == "__main__":
    main()
