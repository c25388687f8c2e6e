#!/usr/bin/env bash
# Runs the browser tests (tests/browser) in headless Chromium through chromedriver, which it
# starts on a free loopback port and stops at exit. Needs Debian's chromium and
# chromium-driver (`apt-get install -y chromium chromium-driver`), and fetches axe-core (a
# pinned release from the npm registry, checked against its SHA-256) into target/ once, for
# the accessibility audit (tests/browser/audit.rs).
#
#   scripts/browser-tests.sh                 # run the suite; screenshots in target/screenshots/
#   scripts/browser-tests.sh --update-docs   # ... and copy the README's screenshots to docs/img/
set -euo pipefail
cd "$(dirname "$0")/.."

# axe-core: MPL-2.0, not vendored; the tarball's checksum pins exactly what runs.
axe_version=4.14.1
axe_sha256=e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
axe_dir="target/axe-core-$axe_version"
if [ ! -f "$axe_dir/axe.min.js" ]; then
  mkdir -p "$axe_dir"
  curl -sSfL -o "$axe_dir/axe.tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$axe_version.tgz"
  echo "$axe_sha256  $axe_dir/axe.tgz" | sha256sum -c --quiet
  tar -xzf "$axe_dir/axe.tgz" -C "$axe_dir" --strip-components=1 package/axe.min.js package/LICENSE
  rm "$axe_dir/axe.tgz"
fi
export AXE_SCRIPT="$PWD/$axe_dir/axe.min.js"

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
  # Phone shots (390 px) for the README's gallery.
  for page in customers idp-second-factor step-up-cancelled salary; do
    cp target/screenshots/w390-??-"$page".png "docs/img/phone-$page.png"
  done
  echo "updated docs/img/"
fi
