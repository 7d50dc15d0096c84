#!/usr/bin/env bash
# run.sh - runs the watch store on the embedded default (LMDB log under var/).
#
# Today the event core exists (log, codec, deciders, writer) and the `replay`
# tool; the projector and the HTTP API come next. So this script installs what
# is missing, builds everything, and checks the local log with replay. It will
# start the services as they arrive, with the same command.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" >/dev/null
mkdir -p var
export WATCHSTORE_LOG=${WATCHSTORE_LOG:-lmdb:var/log}
echo "watch store: built in build/; log at ${WATCHSTORE_LOG}"
if [ -e var/log/data.mdb ]; then
  build/replay/replay --verify
else
  echo "watch store: the log is empty (it is created by its first writer)"
fi
cat <<TXT
watch store: what runs today is the event core; the projector and the HTTP API
on port 5001 are not built yet. Try:
  build/replay/replay --catalogue      the event types and their fields
  build/replay/replay --help           auditing the log
  ops/test.sh                          the test suite
TXT
