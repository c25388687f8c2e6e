#!/usr/bin/env bash
# Runs the browser tests (tests/browser) in headless Chromium through chromedriver, which it
# starts on a free loopback port and stops at exit. Needs Debian's chromium and
# chromium-driver (`apt-get install -y chromium chromium-driver`).
#
#   scripts/browser-tests.sh                 # run the suite; screenshots in target/screenshots/
#   scripts/browser-tests.sh --update-docs   # ... and copy the README's screenshots to docs/img/
set -euo pipefail
cd "$(dirname "$0")/.."

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
chromedriver --port="$port" --allowed-ips=127.0.0.1 > "$log" 2>&1 &
driver=$!
trap 'kill "$driver" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$port/status" > /dev/null && break
  sleep 0.1
done

rm -rf target/screenshots
WEBDRIVER_URL="http://127.0.0.1:$port" cargo test --test browser -- --ignored --test-threads=2

if [ "${1:-}" = "--update-docs" ]; then
  for shot in alice-03-signed-in alice-06-provider-second-factor alice-07-salary alice-08-me \
              alice-09-provider-passkey alice-10-audit bob-02-refused carol-02-enroll \
              totp-only-02-refused-audit; do
    cp "target/screenshots/$shot.png" "docs/img/${shot#*-??-}.png"
  done
  echo "updated docs/img/"
fi
