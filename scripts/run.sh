#!/usr/bin/env bash
# Runs vcds on its embedded default: SQLite under ./data, the local site (as root: two P-node
# namespaces with agents, QEMU VMs installed from the rolls under rolls/), 127.0.0.1:8080.
# Extra arguments go to `vcds serve` (see `vcds serve --help`), e.g. --site sim without root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The virtual nodes' installer image (and QEMU, dnsmasq, nftables) for the local site.
[ "$(id -u)" = 0 ] && bash scripts/build-node-image.sh
# vcctl too: the README's second command is the client.
cargo build --release -p vcds -p vcctl
# The project's own rolls are built in; others are added with POST /admin/rolls?path=DIR
# (under --roll-root) or a roll archive.
exec target/release/vcds serve --roll-root rolls "$@"
