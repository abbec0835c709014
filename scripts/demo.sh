#!/usr/bin/env bash
# The main job on the lab, from nothing: stand the lab up (9,000 synthetic agents in the
# primary directory), deploy the fallback stack from the offline bundle and check it,
# sync every agent to the fallback LDAP and Matrix, run a failover drill with a real
# fault, and print where the signed report is.
# Run as root on Debian 12. Safe to run again: each step does only what is left.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p lab
cd lab

step() { printf '\n== %s\n' "$*"; }

step "lab: primary + fallback hosts (systemd-nspawn)"
planb lab up
step "deploy the fallback stack (offline bundle)"
planb deploy
planb verify

step "sync 9,000 agents: fallback LDAP, Matrix users, department rooms, announcement room"
# The first full sync is the long one (room memberships: about half an hour here); nightly runs
# after it only carry the day's changes. Interrupted, it resumes where it stopped.
planb sync apply --yes

step "signing key for the drill journals"
if [ ! -f .planb/keys/signing.pub ]; then
  planb keys init
fi

step "failover drill: the primary host goes down"
drill_rc=0
planb drill run --scenario primary-outage || drill_rc=$?

step "signed report"
planb report verify
journal_id=$(planb report list --json | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["kind"] == "drill"]
print(rows[-1]["id"] if rows else "")')
if [ -n "$journal_id" ] && planb report export --help >/dev/null 2>&1; then
  planb report export "$journal_id" --format html -o "$PWD/drill-report.html"
  echo "drill report (HTML): $PWD/drill-report.html"
fi
echo "signed journals: $PWD/.planb/journals/ (check them: planb report verify)"
echo "public key for auditors: planb keys export"
exit "$drill_rc"
