#!/usr/bin/env bash
# Debian packages the test suite drives for real: chromium + chromium-driver (browser tests) and
# prometheus (promtool and a real scraping server). Installed once, only when missing.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "==> Installing Debian packages for the test suite: ${missing[*]} (apt-get, about a minute)"
$sudo apt-get update -q >/dev/null
# No service is started here (no init in containers; tests start their own prometheus).
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
