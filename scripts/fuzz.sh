#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted bytes, for a bounded time per target, with cargo-fuzz
# (libFuzzer + AddressSanitizer): `envelope` (hardened XML + SOAP envelope + WS-Addressing) and
# `cdl` (CDL parse, imports, extends, references, cluster spec). Seeds: fuzz/seeds, the
# examples, the hostile corpus, the conformance samples and, when present, ../shared/fixtures/cdl.
# A crash, a panic, a hang over 5 s or 2 GiB of memory fails the run; the input that did it is
# left in fuzz/artifacts/<target>/ (replay: cargo fuzz run <target> <file>).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default: $VCDS_FUZZ_SECONDS, else 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${VCDS_FUZZ_SECONDS:-60}}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz passes unstable flags (-Zsanitizer, coverage passes); stable rustc takes them so.
export RUSTC_BOOTSTRAP=1

seed() { # target, then directories to take small *.xml/*.cdl/*.bin files from
  local target=$1 dir f
  shift
  mkdir -p "fuzz/corpus/$target"
  for dir in "$@"; do
    [ -d "$dir" ] || continue
    find "$dir" -type f \( -name '*.xml' -o -name '*.cdl' -o -name '*.bin' \) -size -64k -print0 |
      while IFS= read -r -d '' f; do
        cp "$f" "fuzz/corpus/$target/seed-$(sha1sum <"$f" | cut -c1-16)"
      done
  done
}
seed envelope fuzz/seeds/envelope service/server/tests/hostile conformance/samples
seed cdl fuzz/seeds/cdl examples service/cdl/components service/cdl/tests ../shared/fixtures/cdl

for target in envelope cdl; do
  echo "fuzzing $target for ${seconds}s"
  cargo fuzz run "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
done
