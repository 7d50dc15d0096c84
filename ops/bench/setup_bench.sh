#!/usr/bin/env bash
# setup_bench.sh - installs what ops/bench/bench_api.sh needs beyond
# ops/setup.sh: wrk (the load generator) and nginx-light (the reference
# server) and jq from Debian. Quiet when they are all there. Run as root (or with sudo)
# on Debian 12.
#
# The bench runs its own nginx (its own config, on a free port, with a
# private prefix under a temp dir). The Debian package would start a system
# nginx on port 80 when it is installed; this script keeps it from starting
# (policy-rc.d during the install) and stops one that runs anyway, so no
# system nginx is left behind.
set -euo pipefail

PACKAGES=(wrk nginx-light jq)

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else SUDO=; fi
else
  SUDO=
fi

stop_system_nginx() {
  # A system nginx started by the package (or earlier) is stopped: the
  # bench wants the cores to itself and port 80 must not stay open.
  local pidf=/run/nginx.pid pid
  [ -s "$pidf" ] || return 0
  pid=$(cat "$pidf")
  kill -0 "$pid" 2>/dev/null || return 0
  echo "setup_bench: stopping the system nginx (pid $pid)" >&2
  if [ -x /etc/init.d/nginx ]; then
    $SUDO /etc/init.d/nginx stop >/dev/null 2>&1 || true
  fi
  if kill -0 "$pid" 2>/dev/null; then
    $SUDO kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # Not started again at boot, where an init system honours this.
  if command -v update-rc.d >/dev/null; then
    $SUDO update-rc.d nginx disable >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "$SUDO" ] || [ "$(id -u)" -eq 0 ]; then :; else
    echo "setup_bench: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
  echo "setup_bench: installing ${missing[*]}" >&2
  # Keep the package's maintainer scripts from starting a service.
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
stop_system_nginx
exit 0
