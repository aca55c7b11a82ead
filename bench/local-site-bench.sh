#!/usr/bin/env bash
# Descriptor → ready on the local site, against bare VM boots of the same image in the same run.
#
# Baselines: one bare VM (the installer image booted straight to its `VCDS-NODE-UP` marker: no
# network install, no control plane) and four bare VMs booted at once (what four nodes cost
# this machine's cores at best). Measured: `vcctl deploy` of a 4-node cluster (frontend + 3
# computes over 2 P-nodes) until the System's phase is ready — reservation, networks, GW-node,
# VMs, each node fetching its kickstart and running its scripts, progress reports — in each boot
# mode (direct: QEMU -kernel/-initrd; pxe: iPXE, DHCP and TFTP from the GW-node). Prints the
# medians and the ratios against one bare VM (target for direct boot: <= 3).
#
# Needs root and the node image (scripts/build-node-image.sh); builds a release vcds unless
# VCDS_BIN names one. Env: RUNS (default 3), MODES (default "direct pxe").
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
modes="${MODES:-direct pxe}"
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces, bridges, QEMU)" >&2; exit 1; }
bash scripts/build-node-image.sh >/dev/null
if [ -z "${VCDS_BIN:-}" ]; then
  cargo build --release -q -p vcds
fi
vcds="${VCDS_BIN:-$PWD/target/release/vcds}"
image="${VCDS_CACHE_DIR:-/var/cache/vcds}/node"
work="$(mktemp -d)"
prefix="vb$$"
port=18$(( $$ % 900 + 100 ))
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  "$vcds" site-down --local-prefix "$prefix" --data-dir "$work/data" >/dev/null 2>&1 || true
  pkill -f "qemu-system-x86_64 -name bare-$$" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { print a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# One bare VM: seconds until its marker.
bare() {
  local i="$1" log="$work/bare-$1.log"
  : > "$log"
  qemu-system-x86_64 -name "bare-$$-$i" -nodefaults -no-user-config -accel tcg -m 192 -smp 1 \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "console=ttyS0 quiet panic=1 vcds.hostname=bare$i vcds.ip=10.0.0.2/24" \
    -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile= \
    -nographic -serial "file:$log" -monitor none -no-reboot &
  local pid=$!
  until grep -q "VCDS-NODE-UP" "$log" 2>/dev/null; do sleep 0.05; done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

bare_one=() bare_four=()
for _ in $(seq "$runs"); do
  t0=$(now); bare 1; bare_one+=("$(minus "$(now)" "$t0")")
  t0=$(now); for i in 1 2 3 4; do bare "$i" & done; wait; bare_four+=("$(minus "$(now)" "$t0")")
done

cat > "$work/four.cdl" <<'EOF'
<?xml version="1.0"?>
<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0"
    xmlns:vc="urn:vcds:2026:cdl">
  <cdl:import location="vcds:cluster"/>
  <cdl:system>
    <four cdl:extends="vc:Cluster">
      <vc:name>four</vc:name>
      <vc:compute><vc:count>3</vc:count></vc:compute>
      <vc:reservation><vc:duration>PT1H</vc:duration></vc:reservation>
    </four>
  </cdl:system>
</cdl:cdl>
EOF

declare -A deploy
for mode in $modes; do
  mkdir -p "$work/data"
  "$vcds" serve --local-prefix "$prefix" --data-dir "$work/data" --listen "127.0.0.1:$port" \
    --boot "$mode" --roll-root rolls --roll rolls/vcds-base --roll rolls/vcds-compute \
    2> "$work/serve-$mode.log" &
  server=$!
  until curl -s -o /dev/null "http://127.0.0.1:$port/wsrf/services/Portal?wsdl"; do sleep 0.1; done
  times=()
  for _ in $(seq "$runs"); do
    t0=$(now)
    id="$(python3 clients/vcctl --url "http://127.0.0.1:$port" deploy "$work/four.cdl" 2>/dev/null | tail -n1)"
    t=$(minus "$(now)" "$t0")
    phase="$(python3 clients/vcctl --url "http://127.0.0.1:$port" status "$id" | awk '/^Phase/ {print $2}')"
    [ "$phase" = ready ] || { echo "$mode: cluster $id ended $phase" >&2; tail -20 "$work/serve-$mode.log" >&2; exit 1; }
    times+=("$t")
    python3 clients/vcctl --url "http://127.0.0.1:$port" destroy "$id" >/dev/null
    sleep 3 # the reconciler takes the cluster down before the next run
  done
  deploy[$mode]="$(printf '%s\n' "${times[@]}" | median)"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  "$vcds" site-down --local-prefix "$prefix" --data-dir "$work/data" >/dev/null
  rm -rf "$work/data"
done

one="$(printf '%s\n' "${bare_one[@]}" | median)"
four="$(printf '%s\n' "${bare_four[@]}" | median)"
printf 'runs: %s (medians), TCG, %s cores\n' "$runs" "$(nproc)"
printf 'bare VM, one:            %6.2f s\n' "$one"
printf 'bare VMs, four at once:  %6.2f s  (ratio %s)\n' "$four" "$(ratio "$four" "$one")"
for mode in $modes; do
  printf 'descriptor -> ready, 4 nodes, %-6s %6.2f s  (ratio %s)\n' "$mode:" "${deploy[$mode]}" \
    "$(ratio "${deploy[$mode]}" "$one")"
done
