#!/usr/bin/env bash
# The main job on the lab, from nothing: stand the lab up, deploy the fallback stack
# from the offline bundle, and check it. (As later parts land this also syncs the
# synthetic agents, runs a drill and prints where the signed report is.)
# Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p lab
cd lab
planb lab up
planb deploy
planb verify
