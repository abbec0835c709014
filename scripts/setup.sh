#!/usr/bin/env bash
# Install what planb needs on a Debian 12 machine (as root), then the venv.
# Safe to repeat: apt and pip only do what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the lab (systemd-nspawn, debootstrap, a bridge, SSH), the offline
# bundle builder (Debian's own Python 3.11 with pip, the same as the hosts', libpq
# headers and a compiler for the psycopg2 wheel; Node.js and npm for its browser
# client), Python's venv, and Chromium for the reports' accessibility check (npm also
# installs axe-core). nodejs and npm are added unless npm is already there.
APT_PACKAGES=(
  systemd-container debootstrap iproute2 openssh-client util-linux
  python3 python3-venv python3-pip python3-dev libpq-dev gcc
  ca-certificates chromium
)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
echo "== installing planb into .venv"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
.venv/bin/planb --version

echo "== installing axe-core (tools/a11y) for the reports' accessibility check"
npm ci --prefix tools/a11y --no-audit --no-fund
