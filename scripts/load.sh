#!/usr/bin/env bash
# Whole-page throughput under load with wrk, each page as a ratio to /healthz measured in the
# same run (these machines are shared and noisy: compare ratios, not requests per second).
#
#   scripts/load.sh            # the debug build
#   scripts/load.sh --release  # the release build (slow to compile the first time)
#
# Starts `fabrikam demo` on free loopback ports with a throw-away database, signs alice in with
# curl, then runs wrk (2 threads, 16 connections, DURATION seconds, default 8) per page.
# Needs wrk and curl (`apt-get install -y wrk curl`). Only 127.0.0.1 is ever contacted.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
if [ "${1:-}" = "--release" ]; then profile=release; cargo build --release --quiet; else cargo build --quiet; fi
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/$profile/fabrikam"
duration=${DURATION:-8}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
site_port=$(free_port); idp_port=$(free_port)
work=$(mktemp -d)
FABRIKAM_ADDR="127.0.0.1:$site_port" IDP_ADDR="127.0.0.1:$idp_port" DATABASE_URL="sqlite:$work/load.db" \
  RUST_LOG=warn "$bin" demo > "$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
site="http://127.0.0.1:$site_port"; idp="http://127.0.0.1:$idp_port"
for _ in $(seq 100); do curl -sf "$site/healthz" > /dev/null && break; sleep 0.1; done

# Sign alice in (password only) the way a browser would, keeping cookies in a jar.
jar="$work/cookies"
authorize=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$site/login")
login_page=$(curl -sL -c "$jar" -b "$jar" "$authorize")
csrf=$(printf '%s' "$login_page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
curl -sL -c "$jar" -b "$jar" -o /dev/null -d "csrf_token=$csrf" -d username=alice -d password=alice-password "$idp/login"
session=$(awk '$6 == "fabrikam_session" { print $7 }' "$jar" | tail -1)
[ -n "$session" ] || { echo "could not sign in; server log:"; cat "$work/server.log"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -b "fabrikam_session=$session" "$site/customers")" = 200 ]

rate() { # path [cookie] -> requests per second
  local args=(-t2 -c16 "-d${duration}s" --latency)
  [ -n "${2:-}" ] && args+=(-H "Cookie: fabrikam_session=$2")
  wrk "${args[@]}" "$site$1" | awk '/Requests\/sec/ { print $2 }'
}

echo "fabrikam $profile build, wrk -t2 -c16 -d${duration}s per page"
baseline=$(rate /healthz)
printf '%-28s %10s req/s  (baseline)\n' "/healthz" "$baseline"
for page in "/ anonymous" "/ alice" "/customers alice" "/customers/1 alice" "/employees alice" "/me alice"; do
  set -- $page
  cookie=""; [ "$2" = alice ] && cookie=$session
  r=$(rate "$1" "$cookie")
  printf '%-28s %10s req/s  ratio %.3f\n' "$1 ($2)" "$r" "$(python3 -c "print($r / $baseline)")"
done
