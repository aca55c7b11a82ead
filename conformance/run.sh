#!/usr/bin/env bash
# CI entry point of the conformance suite:
#   1. offline contract checks (conformance/check-wsdl.sh: xmllint, schemas, zeep, gSOAP);
#   2. pytest against a freshly started `vcds serve` ($VCDS_BIN, default target/debug/vcds).
# Usage: conformance/run.sh [pytest args...]     e.g. conformance/run.sh -k c17 -x
# Env: VCDS_BIN (server binary), VCDS_URL (test an already running server instead),
#      SKIP_SLOW=1 (deselect the tests that wait for real time), VCDS_KEEP_TMP=1 (keep logs/data).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VCDS_BIN="${VCDS_BIN:-$ROOT/target/debug/vcds}"
rc=0
"$ROOT/conformance/check-wsdl.sh" || rc=1
args=()
[ "${SKIP_SLOW:-0}" = 1 ] && args+=(-m "not slow")
(cd "$ROOT/conformance" && python3 -m pytest "${args[@]}" "$@") || rc=1
exit $rc
