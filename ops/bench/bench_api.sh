#!/usr/bin/env bash
# bench_api.sh - the HTTP API's figures, run by hand (never by CI):
#
#   1. GET /api/v1/watches/:id  requests/s and p99, api beside nginx serving
#      the same JSON bytes from a file: the ratio api/nginx is the figure
#      (target >= 1.0);
#   2. GET /api/v1/watches (the full list), likewise;
#   3. POST /api/v1/orders: durable orders/s (201s only) with p50/p99 at 64
#      connections (target >= 20,000 orders/s, p99 < 10 ms);
#   4. the api's peak resident memory, VmHWM (target < 64 MB).
#
# Each of 1-3 is `wrk -t2 -c64 -d10s --latency`, 3 runs (api and nginx
# alternating in 1-2); the figures are medians. The whole set is run for the
# api with --threads 1 and again with --threads 2, each on a fresh store.
# See ops/bench/README.md, "HTTP API".
#
# Usage: ops/bench/bench_api.sh [--build DIR] [--runs N] [--duration S]
#          [--connections C] [--threads "1 2"] [--dir DIR] [--perf] [--keep]
#          [--no-core] [--only reads|orders]
#   --build DIR      the Release build to use (default: build)
#   --runs N         wrk runs per figure (default 3)
#   --duration S     seconds per wrk run (default 10)
#   --connections C  wrk connections (default 64)
#   --threads LIST   the api's --threads values to run (default "1 2")
#   --dir DIR        where to make the temp dir (default $TMPDIR, else /var/tmp)
#   --perf           perf record (DWARF call graphs) the api for 5 s during the 2nd orders run
#                    of each thread count (report in the work dir; implies --keep)
#   --keep           keep the work dir (stores, logs, raw wrk output)
#   --only WHAT      only the GET figures (reads) or only the orders (orders)
#   --no-core        skip the embedded writer's figure (bench_core --only 4,
#                    64 and 4,096 commands in flight)
# Needs wrk, nginx and jq (ops/bench/setup_bench.sh installs them).
# Figures on stdout, progress on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

build=build runs=3 duration=10 conns=64 thread_list="1 2" basedir=${TMPDIR:-/var/tmp}
perf=0 keep=0 core=1 only=
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --threads) thread_list=$2; shift 2 ;;
    --dir) basedir=$2; shift 2 ;;
    --perf) perf=1 keep=1; shift ;;
    --keep) keep=1; shift ;;
    --no-core) core=0; shift ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_api: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$build" in /*) ;; *) build=$root/$build ;; esac
for b in api/api projections/projector ops/storectl; do
  [ -x "$build/$b" ] || { echo "bench_api: $build/$b missing: build first (cmake --build $build)" >&2; exit 2; }
done
for t in wrk nginx jq openssl curl; do
  command -v "$t" >/dev/null || { echo "bench_api: $t missing (ops/bench/setup_bench.sh installs wrk and nginx)" >&2; exit 2; }
done

say() { echo "bench_api: $*" >&2; }
work=$(mktemp -d "$basedir/ws-benchapi-XXXXXX")
chmod 755 "$work" # nginx's workers (nobody) read the files under it
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
  if [ "$keep" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
forget() { local p=$1 q; local keep_p=(); for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep_p+=("$q"); done; pids=("${keep_p[@]}"); }
stop() { # stop pid, wait, return its exit status
  local p=$1 rc=0
  kill -TERM "$p" 2>/dev/null || true
  wait "$p" || rc=$?
  forget "$p"
  return "$rc"
}

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    ss -Htan "( sport = :$p )" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p"; } # key=value from a RESULT line
minmax() { sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s-%s", lo, hi}'; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date '+%Y-%m-%d %H:%M:%S %Z')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true)
say "work dir $work; api from $build; $runs runs x ${duration}s, $conns connections; load $load0"

# -------------------------------------------------------------- the machine
core64= core4096=
if [ "$core" = 1 ] && [ -x "$build/ops/bench/bench_core" ]; then
  # The embedded writer alone (no HTTP), with 64 commands in flight as wrk's
  # 64 connections, and with 4,096 (its documented figure): about 20 s.
  say "embedded writer limit: bench_core --only 4 --runs 1 --inflight 64, then 4096"
  for inf in 64 4096; do
    if "$build/ops/bench/bench_core" --only 4 --runs 1 --inflight "$inf" --dir "$work" >"$work/bench_core-$inf.txt" 2>"$work/bench_core-$inf.err"; then
      v=$(awk '/via wr_queue/ {q=1} q && /commands\/s/ {print $2; exit}' "$work/bench_core-$inf.txt")
      [ "$inf" = 64 ] && core64=$v || core4096=$v
    fi
  done
fi

# -------------------------------------------------------------- nginx
ngx=$work/nginx
mkdir -p "$ngx/html" "$ngx/tmp" "$ngx/logs"
chmod -R 755 "$ngx"
ngx_port=$(free_port)
cat >"$ngx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
master_process on;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/json;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $ngx/tmp/body;
    proxy_temp_path $ngx/tmp/proxy;
    fastcgi_temp_path $ngx/tmp/fastcgi;
    uwsgi_temp_path $ngx/tmp/uwsgi;
    scgi_temp_path $ngx/tmp/scgi;
    server {
        listen 127.0.0.1:$ngx_port;
        root $ngx/html;
        location = /api/v1/watches { try_files /list.json =404; }
        location /api/v1/watches/ { try_files /watch.json =404; }
    }
}
CONF
ngx_pid=
nginx_start() {
  nginx -c "$ngx/nginx.conf" -p "$ngx" -e "$ngx/logs/error.log" >"$ngx/logs/stdout" 2>&1 &
  ngx_pid=$!
  pids+=("$ngx_pid")
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$ngx_port/api/v1/watches" && return 0
    kill -0 "$ngx_pid" 2>/dev/null || break
    sleep 0.05
  done
  say "nginx did not start:"; cat "$ngx/logs/error.log" >&2; exit 1
}
nginx_stop() { [ -n "$ngx_pid" ] && { kill -QUIT "$ngx_pid" 2>/dev/null || true; wait "$ngx_pid" 2>/dev/null || true; forget "$ngx_pid"; ngx_pid=; }; }

# -------------------------------------------------------------- wrk
# wrk_run NAME URL [script] -> appends wrk's output to $work/wrk.log, prints the RESULT line
wrk_run() {
  local name=$1 url=$2 script=${3:-$here/report.lua} out
  out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$script" "$url" 2>&1) || true
  { echo "=== $name $(date +%T) $url"; echo "$out"; } >>"$work/wrk.log"
  grep '^RESULT' <<<"$out" || { say "wrk gave no result for $name:"; echo "$out" >&2; echo "RESULT failed=1"; }
  grep '^FIRST_REFUSAL' <<<"$out" >&2 || true
}

# -------------------------------------------------------------- one api run
declare -A R # R[key]=value, the figures for the summary
framing() { tr -d '\r' <"$1" | awk -F': *' 'tolower($1) == "connection" {c = $2} tolower($1) == "content-length" {l = "content-length"} tolower($1) == "transfer-encoding" {l = $2} END {printf "connection %s, %s", c ? c : "(none)", l ? l : "no length"}'; }
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks
vm() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; } # kB

run_threads() {
  local T=$1 st=$work/store-t$T
  mkdir -p "$st"
  (umask 077 && openssl rand -hex 32 >"$st/email.key" && openssl rand -hex 32 >"$st/jwt.key")
  # The demo catalog with stock enough for every order of the runs.
  jq '.watches |= map(.stock_quantity = 100000000)' "$root/ops/demo/watches.json" >"$st/catalog.json"
  local log="lmdb:$st/log" common=(--log "lmdb:$st/log" --email-key-file "$st/email.key" --snapshot "$st/writer.snapshot")
  "$build/ops/storectl" "${common[@]}" seed-demo --file "$st/catalog.json" >&2
  "$build/projections/projector" --projection=cache --log="$log" --cache="$st/cache" \
    --email-key-file="$st/email.key" 2>>"$st/projector.log" &
  local proj=$!; pids+=("$proj")
  "$build/api/api" --quiet --port 0 --threads "$T" "${common[@]}" --cache "$st/cache" \
    --jwt-key-file "$st/jwt.key" --rate-limit=0 --rate-limit-auth=0 >"$st/api.out" 2>>"$st/api.log" &
  local api=$!; pids+=("$api")
  local port=
  for _ in $(seq 1 600); do
    port=$(sed -n 's/^listening on http:.*:\([0-9]*\)$/\1/p' "$st/api.out")
    [ -n "$port" ] && break
    kill -0 "$api" 2>/dev/null || { say "the api did not start:"; cat "$st/api.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { say "the api did not say where it listens"; exit 1; }
  local base=http://127.0.0.1:$port n=0
  for _ in $(seq 1 200); do # the projector has the catalog in the cache
    n=$(curl -sf "$base/api/v1/watches" | jq length 2>/dev/null || echo 0)
    [ "$n" -ge 50 ] && break
    sleep 0.05
  done
  [ "$n" -ge 50 ] || { say "the cache has $n watches"; exit 1; }
  say "api --threads $T (pid $api) on :$port with $n watches; nginx (2 workers) on :$ngx_port"
  R[t$T.hwm_start]=$(vm "$api" VmHWM)

  # The exact bytes the api sends, as nginx's files.
  curl -sf "$base/api/v1/watches" -o "$ngx/html/list.json"
  local id; id=$(jq -r '.[0].watch_id' "$ngx/html/list.json")
  curl -sf "$base/api/v1/watches/$id" -o "$ngx/html/watch.json"
  chmod 644 "$ngx/html/"*.json
  nginx_start
  local hdr_api hdr_ngx
  cmp -s <(curl -sf "$base/api/v1/watches/$id") <(curl -sf "http://127.0.0.1:$ngx_port/api/v1/watches/$id") ||
    { say "nginx does not serve the api's bytes"; exit 1; }
  R[watch_bytes]=$(wc -c <"$ngx/html/watch.json"); R[list_bytes]=$(wc -c <"$ngx/html/list.json")
  hdr_api=$(curl -s -D - -o /dev/null "$base/api/v1/watches/$id" | wc -c)
  hdr_ngx=$(curl -s -D - -o /dev/null "http://127.0.0.1:$ngx_port/api/v1/watches/$id" | wc -c)
  R[hdr_api]=$hdr_api R[hdr_ngx]=$hdr_ngx
  curl -s -D - -o /dev/null "$base/api/v1/watches/$id" >"$st/headers-api.txt"
  curl -s -D - -o /dev/null "http://127.0.0.1:$ngx_port/api/v1/watches/$id" >"$st/headers-nginx.txt"
  R[framing]="GET 200: $(framing "$st/headers-api.txt"); nginx GET 200: $(framing "$st/headers-nginx.txt")"

  local case path i who url line perf_pid=
  for case in watch list; do
    [ "$only" = orders ] && break
    [ "$case" = watch ] && path=/api/v1/watches/$id || path=/api/v1/watches
    for i in $(seq 1 "$runs"); do
      for who in api nginx; do
        [ "$who" = api ] && url=$base$path || url=http://127.0.0.1:$ngx_port$path
        say "t$T $case $who run $i/$runs"
        line=$(wrk_run "t$T-$case-$who-$i" "$url")
        echo "$line" >>"$work/results-t$T-$case-$who"
      done
    done
  done
  nginx_stop
  R[t$T.hwm_reads]=$(vm "$api" VmHWM)

  # Orders: the catalog with its prices, as a Lua table for orders.lua.
  jq -r '"return {", (.[] | "  {\"\(.watch_id)\", \"\(.price)\"},"), "}"' "$ngx/html/list.json" >"$st/catalog.lua"
  if [ "$only" = reads ]; then
    R[t$T.hwm]=$(vm "$api" VmHWM); stop "$api" || true; stop "$proj" || true; return 0
  fi
  # How the api frames its answers (keep-alive or not, length or chunked).
  curl -s -D "$st/headers-post.txt" -o /dev/null -H 'Content-Type: application/json' \
    -d "$(jq -c '{items: [{watch_id: .[0].watch_id, quantity: 1, unit_price: .[0].price}]}' "$ngx/html/list.json")" \
    "$base/api/v1/orders"
  R[framing]="GET 200: $(framing "$st/headers-api.txt"); POST 201: $(framing "$st/headers-post.txt"); nginx GET 200: $(framing "$st/headers-nginx.txt")"
  local cpu0 pcpu0; cpu0=$(cputicks "$api"); pcpu0=$(cputicks "$proj")
  for i in $(seq 1 "$runs"); do
    say "t$T orders run $i/$runs"
    if [ "$perf" = 1 ] && [ "$i" = 2 ]; then
      (sleep 2; perf record --call-graph dwarf,16384 -F 499 -o "$work/perf-t$T.data" -p "$api" -- sleep 5 >/dev/null 2>&1) &
      perf_pid=$!
    fi
    line=$(ORDERS_CATALOG=$st/catalog.lua wrk_run "t$T-orders-$i" "$base/api/v1/orders" "$here/orders.lua")
    echo "$line" >>"$work/results-t$T-orders"
  done
  [ -n "$perf_pid" ] && { wait "$perf_pid" || true; }
  R[t$T.cpu]=$(( $(cputicks "$api") - cpu0 )) R[t$T.pcpu]=$(( $(cputicks "$proj") - pcpu0 ))
  curl -sf -o /dev/null "$base/health" || say "the api's /health failed after the orders"
  R[t$T.hwm]=$(vm "$api" VmHWM) R[t$T.rss]=$(vm "$api" VmRSS)
  R[t$T.anon]=$(vm "$api" RssAnon) R[t$T.file]=$(vm "$api" RssFile)
  # The resident pages of the two LMDB maps (the log the api writes, the
  # cache it reads): file pages, shared with the page cache.
  R[t$T.maps]=$(awk -v logf="$st/log/data.mdb" -v cache="$st/cache/" '
    /^[0-9a-f]+-[0-9a-f]+ / {name = $6}
    /^Rss:/ {if (name == logf) l += $2; else if (index(name, cache) == 1) c += $2}
    END {printf "log map %d MB, cache map %d MB", l / 1024, c / 1024}' "/proc/$api/smaps")
  curl -sf "$base/metrics" >"$st/metrics.txt" 2>/dev/null || true
  R[t$T.orders_total]=$(awk '$1 == "orders_created_total" {print $2; exit}' "$st/metrics.txt")
  R[t$T.order_statuses]=$(sed -n 's/^http_requests_total{method="POST",route="\/api\/v1\/orders",status_code="\([0-9]*\)"} \([0-9]*\)/\1: \2/p' "$st/metrics.txt" | paste -sd, -)
  local rc=0; stop "$api" || rc=$?
  R[t$T.api_exit]=$rc
  stop "$proj" || true
  R[t$T.api_errors]=$(grep -c '"level":"\(error\|fatal\)"' "$st/api.log" || true)
  R[t$T.proj_errors]=$(grep -c '"level":"\(error\|fatal\)"' "$st/projector.log" || true)
  if [ "${R[t$T.api_errors]}" != 0 ]; then say "api.log errors (t$T):"; grep '"level":"\(error\|fatal\)"' "$st/api.log" | head -5 >&2; fi
  if [ "$perf" = 1 ] && [ -s "$work/perf-t$T.data" ]; then
    perf report -i "$work/perf-t$T.data" --stdio --no-children --percent-limit 0.5 2>/dev/null | head -120 >"$work/perf-t$T.txt" || true
    perf report -i "$work/perf-t$T.data" --stdio --children --percent-limit 2 2>/dev/null | grep -E '^ +[0-9]' | head -60 >"$work/perf-t$T-children.txt" || true
    say "perf report: $work/perf-t$T.txt"
  fi
}

for T in $thread_list; do run_threads "$T"; done

# -------------------------------------------------------------- summary
ms() { awk -v u="$1" 'BEGIN {printf "%.2f", u/1000}'; }
k() { awk -v v="$1" 'BEGIN {if (v>=10000) printf "%.1fk", v/1000; else printf "%.0f", v}'; }
med() { field "$2" <"$work/$1" | median; }
sum() { field "$2" <"$work/$1" | awk '{s+=$1} END {print s+0}'; }
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "HTTP API bench, $started -> $(date '+%H:%M:%S'); tree $commit$([ "$dirty" != 0 ] && echo " + $dirty changed files")"
echo "machine: $(nproc) vCPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load $load0 at the start, $load1 at the end"
echo "wrk -t2 -c$conns -d${duration}s --latency, $runs runs each, medians (min-max); api --quiet --rate-limit=0 --rate-limit-auth=0; nginx $(nginx -v 2>&1 | sed 's/.*\///') worker_processes 2, access_log off"
echo "framing: ${R[framing]:-}"
echo "response bytes: watch ${R[watch_bytes]} + headers api ${R[hdr_api]} / nginx ${R[hdr_ngx]}; list ${R[list_bytes]}"
echo
printf '| %-32s | %-26s | %-26s | %-8s |\n' "figure" "api" "nginx (same bytes)" "api/nginx"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "$(printf -- '-%.0s' {1..28})" "$(printf -- '-%.0s' {1..28})" "$(printf -- '-%.0s' {1..10})"
for T in $thread_list; do
  for case in watch list; do
    a=results-t$T-$case-api n=results-t$T-$case-nginx
    [ -s "$work/$a" ] || continue
    ar=$(med "$a" rps) nr=$(med "$n" rps) ap=$(med "$a" p99_us) np=$(med "$n" p99_us)
    bad=$(( $(sum "$a" non2xx) + $(sum "$a" connect) + $(sum "$a" read) + $(sum "$a" write) + $(sum "$a" timeout) ))
    label="GET /watches/:id, t$T"; [ "$case" = list ] && label="GET /watches (full list), t$T"
    printf '| %-32s | %-26s | %-26s | %-8s |\n' "$label" \
      "$(k "$ar") req/s ($(field rps <"$work/$a" | minmax | sed 's/\.[0-9]*//g')), p99 $(ms "$ap") ms" \
      "$(k "$nr") req/s, p99 $(ms "$np") ms" \
      "$(awk -v a="$ar" -v n="$nr" 'BEGIN {printf "%.2f", a/n}')"
    [ "$bad" = 0 ] || echo "  !! api: $bad non-2xx responses or socket errors in these runs (see wrk.log)"
  done
  o=results-t$T-orders
  [ -s "$work/$o" ] || continue
  printf '| %-32s | %-55s | %-8s |\n' "POST /orders, t$T, $conns conns" \
    "$(k "$(med "$o" orders_per_s)") orders/s 201 ($(field orders_per_s <"$work/$o" | minmax | sed 's/\.[0-9]*//g')); p50 $(ms "$(med "$o" p50_us)") ms, p99 $(ms "$(med "$o" p99_us)") ms" \
    "target 20k, p99<10ms"
  echo "  orders: $(sum "$o" created) created; non-201: $(sum "$o" other2xx) 2xx, $(sum "$o" s4xx) 4xx, $(sum "$o" s5xx) 5xx (wrk non-2xx/3xx: $(sum "$o" non2xx)); socket errors: connect $(sum "$o" connect), read $(sum "$o" read), write $(sum "$o" write), timeout $(sum "$o" timeout)"
  echo "  the api counted ${R[t$T.orders_total]:-?} orders created (its POST /orders statuses: ${R[t$T.order_statuses]:-?}); CPU per 201 over the order runs: api $(awk -v t="${R[t$T.cpu]}" -v n="$(sum "$o" created)" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", n ? t / hz / n * 1e6 : 0}') us, projector $(awk -v t="${R[t$T.pcpu]}" -v n="$(sum "$o" created)" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", n ? t / hz / n * 1e6 : 0}') us"
  echo "  api t$T peak RSS (VmHWM): $(( ${R[t$T.hwm]} / 1024 )) MB after the orders ($(( ${R[t$T.hwm_start]} / 1024 )) MB once started, $(( ${R[t$T.hwm_reads]} / 1024 )) MB after the reads); target < 64 MB"
  echo "  api t$T at the end: VmRSS $(( ${R[t$T.rss]} / 1024 )) MB = anonymous $(( ${R[t$T.anon]} / 1024 )) MB + file $(( ${R[t$T.file]} / 1024 )) MB (${R[t$T.maps]})"
  echo "  api t$T exit status ${R[t$T.api_exit]}; error lines: api.log ${R[t$T.api_errors]}, projector.log ${R[t$T.proj_errors]}"
done
echo
if [ -n "$core64" ]; then
  echo "machine limit, embedded writer without HTTP (bench_core --only 4 --runs 1, same run): $core64 place-order commands/s with 64 in flight, $core4096 with 4,096"
else
  echo "machine limit, embedded writer: see ops/bench/README.md (bench_core figure 4: 121k place-order commands/s with 4,096 in flight; 29.5k with 64)"
fi
