# Sourced by tests/run.sh: starts the servers the PostgreSQL and S3 tests need, on
# 127.0.0.1 and free ports, and exports their URLs; `stop_servers` (trapped on exit)
# stops them. PostgreSQL comes from Debian's packages, in a fresh cluster under a
# temporary directory; S3 is moto's server mode from the venv.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

SERVERS_DIR="$(mktemp -d /tmp/ferry-servers.XXXXXX)"
PG_BIN=""
MOTO_PID=""

stop_servers() {
  if [ -n "$PG_BIN" ] && [ -f "$SERVERS_DIR/pg/postmaster.pid" ]; then
    $PG_AS "$PG_BIN/pg_ctl" -D "$SERVERS_DIR/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; fi
  rm -rf "$SERVERS_DIR"
}
trap stop_servers EXIT

# PostgreSQL: initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` user the Debian package creates.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PG_AS=""
if [ "$(id -u)" -eq 0 ]; then
  PG_AS="runuser -u postgres --"
  chown postgres "$SERVERS_DIR"
fi
PG_PORT="$(free_port)"
PG_PASSWORD="ferry-test-$RANDOM$RANDOM"
echo "$PG_PASSWORD" > "$SERVERS_DIR/pwfile"
[ -n "$PG_AS" ] && chown postgres "$SERVERS_DIR/pwfile"
$PG_AS "$PG_BIN/initdb" -D "$SERVERS_DIR/pg" -U ferry --pwfile="$SERVERS_DIR/pwfile" -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
# Durability is not under test here: fsync off keeps loading the demo quick.
$PG_AS "$PG_BIN/pg_ctl" -D "$SERVERS_DIR/pg" -l "$SERVERS_DIR/pg.log" -w \
  -o "-p $PG_PORT -k $SERVERS_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
export FERRY_TEST_POSTGRES_URL="postgres://ferry:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"

# S3: moto's server mode (an in-memory S3 that speaks multipart uploads and ranges).
if ! target/py/bin/python -c "import moto.server, flask" 2>/dev/null; then
  target/py/bin/pip install --quiet --disable-pip-version-check -r tests/py/servers.txt
fi
S3_PORT="$(free_port)"
target/py/bin/moto_server -H 127.0.0.1 -p "$S3_PORT" >"$SERVERS_DIR/moto.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break
  sleep 0.1
done
export FERRY_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
# The tests fail, rather than skip, when a server is missing.
export FERRY_REQUIRE_SERVERS=1
