#!/usr/bin/env bash
# run.sh - runs the watch store on the embedded default, in the foreground:
# the LMDB log under var/log, a private PostgreSQL cluster under var/pg
# (127.0.0.1:5433 for analysts), the projector that keeps the read models
# and the LMDB cache (var/cache) up to date, and the HTTP API on port 5001
# (which holds the log's writer). Ctrl-C stops everything cleanly; run it
# again and the data is still there.
# Before the API starts, storectl loads the demo catalog into a store
# without watches and, on a first run, makes an admin account
# (admin@watchstore.local, its password in var/secrets/admin.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" >/dev/null
mkdir -p var
# The key of the e-mail index (a keyed hash, so that look-ups by e-mail do
# not keep the address itself as a key): made once, private.
if [ ! -s var/secrets/email.key ]; then
  (umask 077 && mkdir -p var/secrets && openssl rand -hex 32 >var/secrets/email.key)
fi
# The key the API signs its access tokens with.
if [ ! -s var/secrets/jwt.key ]; then
  (umask 077 && mkdir -p var/secrets && openssl rand -hex 32 >var/secrets/jwt.key)
fi
export WATCHSTORE_EMAIL_KEY_FILE=${WATCHSTORE_EMAIL_KEY_FILE:-var/secrets/email.key}
export WATCHSTORE_JWT_KEY_FILE=${WATCHSTORE_JWT_KEY_FILE:-var/secrets/jwt.key}
export PORT=${PORT:-5001}
export WATCHSTORE_CACHE=${WATCHSTORE_CACHE:-var/cache}
export WATCHSTORE_LOG=${WATCHSTORE_LOG:-lmdb:var/log}
pg_port=${WATCHSTORE_PG_PORT:-5433}
export WATCHSTORE_DB=${WATCHSTORE_DB:-$(ops/pg.sh start var/pg "$pg_port")}

projector_pid=
api_pid=
cleanup() {
  trap - INT TERM EXIT
  [ -n "$api_pid" ] && kill -TERM "$api_pid" 2>/dev/null && wait "$api_pid" || true
  [ -n "$projector_pid" ] && kill -TERM "$projector_pid" 2>/dev/null && wait "$projector_pid" || true
  ops/pg.sh stop var/pg
  echo "watch store: stopped"
}
trap cleanup INT TERM EXIT

build/projections/migrate >/dev/null
if [ -e var/log/data.mdb ]; then
  build/replay/replay --verify --quiet || true
fi
# The demo catalog into a store without watches (otherwise storectl says so
# and writes nothing), and on a first run an admin account with a random
# password in var/secrets/admin.txt. storectl writes through the log's one
# writer, so it runs before the API takes the log.
build/ops/storectl seed-demo
admin_email=admin@watchstore.local
if [ ! -s var/secrets/admin.txt ]; then
  build/ops/storectl create-admin --email "$admin_email" --password-out var/secrets/admin.txt
fi
admin_login="${admin_email}, password in var/secrets/admin.txt"
[ -s var/secrets/admin.txt ] || admin_login="${admin_email} (an account made before; no password file)"
build/projections/projector 2>>var/projector.log &
projector_pid=$!
build/api/api >var/api.out 2>>var/api.log &
api_pid=$!
for _ in $(seq 1 600); do
  grep -q listening var/api.out 2>/dev/null && break
  kill -0 "$api_pid" 2>/dev/null || { echo "watch store: the API did not start; see var/api.log" >&2; exit 1; }
  sleep 0.1
done
cat <<TXT
watch store: running (Ctrl-C stops it)
  API          http://127.0.0.1:${PORT}/api/v1/watches   (health: /health, metrics: /metrics)
  API docs     http://127.0.0.1:${PORT}/api-docs (OpenAPI 3, YAML)
  admin login  ${admin_login}
  log          ${WATCHSTORE_LOG}
  read models  psql -h 127.0.0.1 -p ${pg_port} -U postgres watchstore
  cache        ${WATCHSTORE_CACHE} (read by the API)
  logs         var/api.log, var/projector.log (JSON lines)
  replay       build/replay/replay --help
TXT
wait -n "$api_pid" "$projector_pid"
