#!/usr/bin/env bash
# Runs every test of vcds: the Rust workspace (unit, integration, store tests on SQLite and
# PostgreSQL, root-only site tests with namespaces and QEMU when run as root) and the
# outside-client conformance suite (xmllint, zeep, gSOAP, raw envelopes) against a started
# `vcds serve`, then a bounded fuzzing run of the envelope and CDL parsers (VCDS_FUZZ_SECONDS
# per target, default 60). Builds once; installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export VCDS_REQUIRE_POSTGRES=1 VCDS_REQUIRE_TOOLS=1
if [ "$(id -u)" = 0 ]; then
  # The node image (kernel + busybox initramfs) the root site tests boot; cached.
  bash scripts/build-node-image.sh >/dev/null
  export VCDS_REQUIRE_ROOT_TESTS=1
fi
# One build of everything the tests run, shared by both suites.
cargo build --workspace --all-targets --locked
cargo test --workspace --locked
VCDS_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/vcds" bash conformance/run.sh
bash scripts/fuzz.sh "${VCDS_FUZZ_SECONDS:-60}"
