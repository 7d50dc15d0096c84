#!/usr/bin/env bash
# setup.sh - installs every Debian package the watch store needs to build, run
# and test. Idempotent: quiet when everything is already there. Run as root
# (or with sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  liblmdb-dev lmdb-utils          # the embedded log and the caches
  libmsgpack-dev                  # event payloads
  librdkafka-dev                  # the Kafka/Redpanda log backend
  libuv1-dev libh2o-evloop-dev libh2o-dev  # the HTTP API
  libssl-dev openssl              # SHA-256, HMAC, scrypt, TLS, random; key files
  libcrypt-dev                    # bcrypt hashes of accounts from the old backend
  libpq-dev postgresql            # read models
  libjansson-dev libcurl4-openssl-dev  # JSON, outbound HTTP
  libcriterion-dev                # tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "setup: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
