#!/usr/bin/env bash
# Runs vcds on its embedded default: SQLite under ./data, the local site, 127.0.0.1:8080.
# Extra arguments go to `vcds serve` (see `vcds serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p vcds
# The project's own rolls (rolls/) may be added with POST /admin/rolls?path=rolls/NAME.
exec target/release/vcds serve --roll-root rolls "$@"
