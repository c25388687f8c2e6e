#!/usr/bin/env bash
# Whole-page load benchmark: every page of the intranet (alice signed in with password and
# TOTP, so the audited salary page is measured too) and a bare actix-web baseline serving a
# page of the same size, alternating, wrk -t2 -c32; prints req/s, p50/p99 and each page's
# ratio to the baseline of the same round, then the audit-row check, cold start and peak RSS.
# Compare ratios, not requests per second: these machines are shared and noisy.
#
#   scripts/load.sh --release            # what BENCHMARKS.md records
#   scripts/load.sh                      # the debug build (quick, much slower pages)
#   DURATION=5 ROUNDS=2 PAGES='/healthz|/employees/1/salary' scripts/load.sh --release
#   scripts/load.sh --release --instructions   # instructions per request (callgrind): a
#                                              # count the machine's load does not move
#
# Needs wrk, curl and python3 (`apt-get install -y wrk`). Only 127.0.0.1 is ever contacted;
# every server it starts is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
flags=()
script=scripts/load.py
for arg in "$@"; do
  case "$arg" in
    --release) profile=release; flags=(--release) ;;
    --instructions) script=scripts/instructions.py ;;
    *) echo "usage: scripts/load.sh [--release] [--instructions]"; exit 2 ;;
  esac
done
cargo build "${flags[@]}" --quiet --bin fabrikam --example bare
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [ "$script" = scripts/load.py ]; then
  command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install -y wrk)"; exit 1; }
else
  command -v valgrind > /dev/null || { echo "valgrind is not installed (apt-get install -y valgrind)"; exit 1; }
fi
FABRIKAM_BIN="$target_dir/$profile/fabrikam" BARE_BIN="$target_dir/$profile/examples/bare" \
  exec python3 "$script"
