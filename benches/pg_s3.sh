#!/usr/bin/env bash
# Issue 9's figures: records/s exporting transactions from PostgreSQL vs SQLite at about
# 1M transactions (`ferry demo --scale 10`), and MB/s of S3 delivery (moto on 127.0.0.1).
# Starts its own servers (tests/servers.sh). Usage: bash benches/pg_s3.sh [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE="${1:-10}"
source tests/servers.sh
# FERRY_BENCH_PROFILE=debug reuses the test build (no release build on a busy machine).
PROFILE="${FERRY_BENCH_PROFILE:-release}"
if [ "$PROFILE" = release ]; then cargo build --release --locked --bin ferry >/dev/null; fi
FERRY="$PWD/target/$PROFILE/ferry"
echo "profile: $PROFILE, scale: $SCALE"
W="$SERVERS_DIR/bench"; mkdir -p "$W"
export FERRY_CACHE_DIR="$W/cache"

"$FERRY" demo --out "$W/platform" --scale "$SCALE" --seed 42 --postgres "$FERRY_TEST_POSTGRES_URL" | sed "s/:[^:@]*@/:***@/"

job() { # name, [source] line, output dir
  cat > "$W/$1.toml" <<TOML
[snapshot]
name = "$1"
as_of = "2026-03-31T14:30:22Z"
[source]
$2
[output]
dir = "$3"
$4
[[resource]]
name = "transactions"
TOML
}
rate() { # name -> "records seconds" of one run of the transactions resource
  local t0 t1 out
  t0=$(date +%s.%N); out=$("$FERRY" run --progress none "$W/$1.toml"); t1=$(date +%s.%N)
  local records; records=$(echo "$out" | sed -n 's/.*: \([0-9,]*\) records.*/\1/p' | head -1 | tr -d ,)
  echo "$records $(python3 -c "print($t1 - $t0)")"
  echo "$out" | grep delivered >&2 || true
}
job sqlite "sqlite = \"platform/platform.db\"" "out-sqlite" ""
job postgres "postgres = \"$FERRY_TEST_POSTGRES_URL\"" "out-pg" ""
curl -sf -X PUT "$FERRY_TEST_S3_ENDPOINT/bench" >/dev/null
job s3 "sqlite = \"platform/platform.db\"" "s3://bench/exports" "[s3]
endpoint = \"$FERRY_TEST_S3_ENDPOINT\"
region = \"us-east-1\"
access_key_id = \"bench\"
secret_access_key = \"bench\""
cd "$W"
rate sqlite >/dev/null   # warms the plugin cache
# SQLite and PostgreSQL alternated, so a noisy neighbour slows both alike.
ROUNDS="${ROUNDS:-3}"
: > runs.txt
for _ in $(seq "$ROUNDS"); do
  echo "sqlite $(rate sqlite)" >> runs.txt
  echo "postgres $(rate postgres)" >> runs.txt
done
echo "s3 $(rate s3)" >> runs.txt
python3 - runs.txt out-sqlite out-pg <<'PY'
import json, pathlib, statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
def last_file(out):
    snaps = sorted((p for p in pathlib.Path(out).iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
    m = json.loads((snaps[-1] / "manifest.json").read_text())
    return sum(f["bytes"] for r in m["resources"] for f in r["files"])
rates = {}
print(f"| source | runs | median s (min-max) | records/s | transactions file MiB |")
print("|---|---|---|---|---|")
for name, out in [("sqlite", sys.argv[2]), ("postgres", sys.argv[3]), ("s3", None)]:
    mine = [(int(r), float(s)) for n, r, s in runs if n == name]
    secs = [s for _, s in mine]
    med = statistics.median(secs)
    rates[name] = mine[0][0] / med
    size = f"{last_file(out) / 2**20:.1f}" if out else "-"
    print(f"| {name} | {len(mine)} | {med:.2f} ({min(secs):.2f}-{max(secs):.2f}) | {rates[name]:,.0f} | {size} |")
pairs = [float(b[2]) / float(a[2]) for a, b in zip(runs[0::2], runs[1::2]) if a[0] == "sqlite" and b[0] == "postgres"]
print(f"postgres / sqlite wall, paired: median {statistics.median(pairs):.2f} ({min(pairs):.2f}-{max(pairs):.2f})")
PY
