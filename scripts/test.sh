#!/usr/bin/env bash
# Run planb's tests: unit tests, then the lab integration tests (real Debian hosts
# booted with systemd-nspawn; needs root). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pytest "$@"
