#!/usr/bin/env bash
# Kickstart serving benchmark (not a test): profiles served per second by `vcds serve` to an
# installing node, against a static file served by the same server in the same run.
#
#   - vcds: `vcds serve` (release build: target/release/vcds, built with
#     `cargo build --release -p vcds` when missing) on a temporary data dir, with our own rolls
#     (rolls/vcds-base, rolls/vcds-compute) added as tar archives through POST /admin/rolls and
#     one compute host registered for 127.0.0.1 through POST /admin/hosts;
#   - measured: GET /install/sbin/kickstart.cgi (the node is identified by its address; its
#     profile is generated once, then served from the per-host cache);
#   - baseline: GET $STATIC_PATH, a file compiled into the binary (default /schemas/oasis/r-2.xsd,
#     3.6 kB, near a kickstart's size; /wsdl/vcds.wsdl is 76 kB), same server, same run.
# Load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up) on each URL.
# Then the same two URLs paced to $TARGET_RPS requests/s in all (WRK_DELAY_MS in wrk-report.lua).
# Prints requests/s, p50, p99 and the ratios kickstart/static, and checks the targets
# (>= 5,000 profiles/s at saturation; p99 < 2 ms at 5,000 profiles/s).
#
# Usage: bench/kickstart-bench.sh   env: VCDS_BIN, DURATION (10s), THREADS (2), CONNECTIONS (64),
#                                        WARMUP (2s; 0 to skip), STATIC_PATH, KEEP_TMP=1
# Needs: wrk, curl, tar, python3, cargo (if no build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
WARMUP="${WARMUP:-2s}"
TARGET_RPS="${TARGET_RPS:-5000}"
STATIC_PATH="${STATIC_PATH:-/schemas/oasis/r-2.xsd}"
VCDS_BIN="${VCDS_BIN:-$ROOT/target/release/vcds}"
RERUN="bench/kickstart-bench.sh   # from $ROOT; env DURATION=$DURATION THREADS=$THREADS CONNECTIONS=$CONNECTIONS STATIC_PATH=$STATIC_PATH VCDS_BIN=$VCDS_BIN"

for tool in wrk curl tar python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk curl tar python3)" >&2; exit 2; }
done

TMP="$(mktemp -d /tmp/vcds-ks-bench.XXXXXX)"
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$VCDS_BIN" ]; then
  echo "== $VCDS_BIN missing: cargo build --release -p vcds"
  (cd "$ROOT" && cargo build --release -p vcds)
fi

PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()')"
mkdir -p "$TMP/data"
RUST_LOG="${RUST_LOG:-warn}" "$VCDS_BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" >"$TMP/vcds.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  kill -0 "$PID" 2>/dev/null || { echo "vcds exited during start-up; log:" >&2; cat "$TMP/vcds.log" >&2; exit 1; }
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
BASE="http://127.0.0.1:$PORT"

expect() { # status-wanted what curl-args…
  local want="$1" what="$2"; shift 2
  local got
  got="$(curl -sS --max-time 30 -o "$TMP/reply" -w '%{http_code}' "$@")"
  [ "$got" = "$want" ] || { echo "$what: HTTP $got (wanted $want):" >&2; cat "$TMP/reply" >&2; exit 1; }
}
echo "== adding rolls and a host on vcds ($BASE)"
for roll in vcds-base vcds-compute; do
  tar -C "$ROOT/rolls" -cf "$TMP/$roll.tar" "$roll"
  expect 201 "add roll $roll" -H 'Content-Type: application/x-tar' --data-binary @"$TMP/$roll.tar" "$BASE/admin/rolls"
done
expect 201 "register host" -H 'Content-Type: application/json' --data-binary \
  '{"name":"bench-0","mac":"52:54:00:00:be:00","ip":"127.0.0.1","cluster":"bench","appliance":"compute"}' \
  "$BASE/admin/hosts"
expect 200 "kickstart" "$BASE/install/sbin/kickstart.cgi"
grep -q '^%packages' "$TMP/reply" || { echo "not a kickstart:" >&2; cat "$TMP/reply" >&2; exit 1; }
KS_BYTES="$(wc -c <"$TMP/reply")"
expect 200 "static file" "$BASE$STATIC_PATH"
STATIC_BYTES="$(wc -c <"$TMP/reply")"

run_wrk() { # name url
  if [ "$WARMUP" != 0 ]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$ROOT/bench/wrk-report.lua" "$2" >/dev/null 2>&1 || true
  fi
  echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION  $1  $2" >&2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$ROOT/bench/wrk-report.lua" "$2" \
    | tee "$TMP/wrk-$1.txt" | grep '^RESULT' || { cat "$TMP/wrk-$1.txt" >&2; exit 1; }
}
S="$(run_wrk static "$BASE$STATIC_PATH")"
K="$(run_wrk kickstart "$BASE/install/sbin/kickstart.cgi")"
# Latency at the target rate: each of the $CONNECTIONS connections paced to about
# $TARGET_RPS/$CONNECTIONS requests/s (a node fetches its kickstart once; 5,000/s is a whole
# site installing at once), static file as the baseline at the same pace.
DELAY_MS=$(( CONNECTIONS * 1000 / TARGET_RPS ))
SP="$(WRK_DELAY_MS=$DELAY_MS run_wrk static-paced "$BASE$STATIC_PATH")"
KP="$(WRK_DELAY_MS=$DELAY_MS run_wrk kickstart-paced "$BASE/install/sbin/kickstart.cgi")"
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
echo
echo "GET over HTTP/1.1 keep-alive, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 127.0.0.1, $(nproc) cores"
printf '%-10s %8s %12s %10s %10s %8s %8s\n' what bytes 'requests/s' 'p50 ms' 'p99 ms' non2xx sockerr
printf '%-10s %8s %12s %10s %10s %8s %8s\n' static "$STATIC_BYTES" "$(field "$S" rps)" "$(field "$S" p50_ms)" "$(field "$S" p99_ms)" "$(field "$S" non2xx)" "$(field "$S" socket_errors)"
printf '%-10s %8s %12s %10s %10s %8s %8s\n' kickstart "$KS_BYTES" "$(field "$K" rps)" "$(field "$K" p50_ms)" "$(field "$K" p99_ms)" "$(field "$K" non2xx)" "$(field "$K" socket_errors)"
echo "paced: each connection waits ${DELAY_MS} ms after each response (target ${TARGET_RPS}/s in all)"
printf '%-10s %8s %12s %10s %10s %8s %8s\n' static "$STATIC_BYTES" "$(field "$SP" rps)" "$(field "$SP" p50_ms)" "$(field "$SP" p99_ms)" "$(field "$SP" non2xx)" "$(field "$SP" socket_errors)"
printf '%-10s %8s %12s %10s %10s %8s %8s\n' kickstart "$KS_BYTES" "$(field "$KP" rps)" "$(field "$KP" p50_ms)" "$(field "$KP" p99_ms)" "$(field "$KP" non2xx)" "$(field "$KP" socket_errors)"
python3 - "$(field "$S" rps)" "$(field "$K" rps)" "$(field "$S" p99_ms)" "$(field "$K" p99_ms)" \
  "$(field "$KP" rps)" "$(field "$SP" p99_ms)" "$(field "$KP" p99_ms)" <<'EOF'
import sys
s, k, sp, kp, kr, spp, kpp = map(float, sys.argv[1:])
print("ratio kickstart/static at saturation: throughput %.2f, p99 latency %.2f"
      % (k / s, kp / sp if sp else float("nan")))
print("ratio kickstart/static paced: p99 latency %.2f" % (kpp / spp if spp else float("nan")))
print("targets: >= 5,000 profiles/s %s (%.0f at saturation); p99 < 2 ms at %.0f profiles/s %s (%.3f ms)"
      % ("met" if k >= 5000 else "MISSED", k, kr, "met" if kpp < 2 and kr >= 4500 else "MISSED", kpp))
EOF
echo "re-run: $RERUN"
