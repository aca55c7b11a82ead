#!/usr/bin/env bash
# Runs every test of vcds: the Rust workspace (unit, integration, store tests on SQLite and
# PostgreSQL) and the outside-client conformance suite (zeep, raw envelopes, gSOAP, xmllint)
# against a started `vcds serve`. Builds once; installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export VCDS_REQUIRE_POSTGRES=1 VCDS_REQUIRE_TOOLS=1
# One build of everything the tests run, shared by both suites.
cargo build --workspace --all-targets --locked 2>&1 | tail -n 3
cargo test --workspace --locked -- --test-threads=2
export VCDS_BIN="$PWD/target/debug/vcds"
bash conformance/check-wsdl.sh
python3 -m pytest -q conformance
