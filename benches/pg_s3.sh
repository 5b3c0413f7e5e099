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
rate() { # name -> records/s of the transactions resource
  local t0 t1 out
  t0=$(date +%s.%N); out=$("$FERRY" run "$W/$1.toml"); t1=$(date +%s.%N)
  local records; records=$(echo "$out" | sed -n 's/.*: \([0-9]*\) records.*/\1/p' | head -1)
  python3 -c "print(f'$1: {$records} records in {$t1-$t0:.2f}s = {$records/($t1-$t0):,.0f} records/s')"
  echo "$out" | grep delivered || true
}
job sqlite "sqlite = \"platform/platform.db\"" "out-sqlite" ""
job postgres "postgres = \"$FERRY_TEST_POSTGRES_URL\"" "out-pg" ""
curl -sf -X PUT "$FERRY_TEST_S3_ENDPOINT/bench" >/dev/null
job s3 "sqlite = \"platform/platform.db\"" "s3://bench/exports" "[s3]
endpoint = \"$FERRY_TEST_S3_ENDPOINT\"
region = \"us-east-1\"
access_key_id = \"bench\"
secret_access_key = \"bench\""
rate sqlite >/dev/null   # warms the plugin cache
rate sqlite
rate postgres
rate s3
