#!/usr/bin/env bash
# Installs everything vcds needs on a fresh Debian machine of this kind (idempotent).
# Debian packages: build deps (libpq), the conformance and benchmark tools (xmllint, gSOAP, wrk),
# Ganglia (gmond, gmetad) for the monitor tests, Chromium and its WebDriver for the web UI's browser test.
# PyPI packages: the outside SOAP client (zeep), the kickstart validator (pykickstart), selenium.
# crates.io: cargo-fuzz, for scripts/fuzz.sh.
set -euo pipefail
need_apt=()
for pkg in libpq-dev libssl-dev openssl libxml2-utils gsoap libgsoap-dev wrk pkg-config ganglia-monitor gmetad chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  # Packages must not start their daemons: a stock gmond would multicast beyond this machine.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
python3 -m pip install -q --disable-pip-version-check -r "$(dirname "$0")/../conformance/requirements.txt"
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz --locked
# PostgreSQL serves the store tests; start it when the machine has it but it is down.
if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
