#!/usr/bin/env bash
# pg.sh - a private PostgreSQL cluster in a folder, for the local run and for
# tests. PostgreSQL refuses to run as root, so as root the cluster belongs to
# the `postgres` system user (made by Debian's package).
#
#   ops/pg.sh start DIR [TCP_PORT]   initdb on first use, start, create the
#                                    database `watchstore`; prints its conninfo
#   ops/pg.sh stop DIR               fast shutdown
#   ops/pg.sh conninfo DIR           prints the conninfo of a started cluster
#
# The server listens on a Unix socket in DIR/run (always) and, when TCP_PORT is
# given, on 127.0.0.1:TCP_PORT. Local connections are trusted: the socket
# folder is private to the cluster's owner and root.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,13p' "$0" >&2; exit 2; }
bin=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data
run=$dir/run
port_file=$dir/port

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

conninfo() {
  echo "host=$run port=$(cat "$port_file") dbname=watchstore user=postgres"
}

case "$cmd" in
start)
  tcp=${3:-}
  mkdir -p "$run"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir" "$run"
    chmod 700 "$dir"
    # The cluster's owner must be able to reach its folder.
    p=$(dirname "$dir")
    while [ "$p" != / ]; do
      [ -x "$p" ] && runuser -u postgres -- test -x "$p" || chmod o+x "$p"
      p=$(dirname "$p")
    done
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  # A Unix socket only is private to the folder, so any port number will do.
  port=${tcp:-5432}
  echo "$port" >"$port_file"
  listen=""
  [ -n "$tcp" ] && listen=127.0.0.1
  if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $run -c listen_addresses='$listen' -c fsync=on" >/dev/null ||
      { tail -20 "$dir/server.log" >&2; exit 1; }
  fi
  if ! as_owner "$bin/psql" -h "$run" -p "$port" -U postgres -Atqc \
      "SELECT 1 FROM pg_database WHERE datname='watchstore'" postgres | grep -q 1; then
    as_owner "$bin/createdb" -h "$run" -p "$port" -U postgres watchstore
  fi
  conninfo
  ;;
stop)
  [ -s "$data/PG_VERSION" ] || exit 0
  as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  ;;
conninfo)
  conninfo
  ;;
*)
  sed -n '2,13p' "$0" >&2
  exit 2
  ;;
esac
