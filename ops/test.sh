#!/usr/bin/env bash
# test.sh - the full test suite: installs what is missing, builds the project
# twice (Release, and Asan = AddressSanitizer + UndefinedBehaviorSanitizer)
# and runs every test with ctest in both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
for type in Release Asan; do
  dir=build-test-$(echo "$type" | tr '[:upper:]' '[:lower:]')
  echo "== $type build ($dir)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "== $type tests"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" -L unit)
done
