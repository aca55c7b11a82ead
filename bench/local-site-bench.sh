#!/usr/bin/env bash
# Descriptor → ready on the local site, against bare VM boots of the same image in the same run.
#
# Baselines: one bare VM (the installer image booted straight to its `VCDS-NODE-UP` marker: no
# network install, no control plane) and four bare VMs booted at once (what four nodes cost
# this machine's cores at best). Measured: `vcctl deploy` of a 4-node cluster (frontend + 3
# computes over 2 P-nodes) until the System's phase is ready — reservation, networks, GW-node,
# VMs, each node fetching its kickstart and running its scripts, progress reports — in each boot
# mode (direct: QEMU -kernel/-initrd; pxe: iPXE, DHCP and TFTP from the GW-node). Prints the
# medians and the ratios against one bare VM (target for direct boot: <= 3), and for PXE where
# the time of the last run went, from the GW-node's dnsmasq log (whole seconds).
#
# Needs root and the node image (scripts/build-node-image.sh); builds a release vcds and vcctl
# unless VCDS_BIN names the server (vcctl is then the one beside it, or VCCTL_BIN).
# Env: RUNS (default 3), MODES (default "direct pxe").
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
modes="${MODES:-direct pxe}"
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces, bridges, QEMU)" >&2; exit 1; }
bash scripts/build-node-image.sh >/dev/null
if [ -z "${VCDS_BIN:-}" ]; then
  cargo build --release -q -p vcds -p vcctl
fi
vcds="${VCDS_BIN:-$PWD/target/release/vcds}"
vcctl="${VCCTL_BIN:-$(dirname "$vcds")/vcctl}"
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

# Seconds of the day of a syslog-style time (dnsmasq's log) or of `date +%T`.
sod() { awk -F: '{ print $1 * 3600 + $2 * 60 + $3 }' <<< "$1"; }
# Where a PXE deployment's time went: per step, seconds after `vcctl deploy` started (at $1),
# the first and the last of the nodes (dnsmasq log $2).
pxe_breakdown() {
  local start log="$2" step pattern first last ipxe
  start="$(sod "$1")"
  # The firmware's DHCP is what comes before the last boot script is sent; after it, the
  # installer's own.
  ipxe="$(grep -E 'sent .*boot.ipxe' "$log" | awk '{ print $3 }' | sort | tail -n1)"
  for step in "first DHCPDISCOVER (firmware up):DHCPDISCOVER" "DHCPACK to iPXE:DHCPACK" \
      "boot.ipxe sent:sent .*boot.ipxe"; do
    pattern="${step#*:}"
    first="$(grep -E "$pattern" "$log" | awk '{ print $3 }' | sort | head -n1)"
    last="$(grep -E "$pattern" "$log" | awk -v t="$ipxe" '$3 <= t || !/DHCP/ { print $3 }' | sort | tail -n1)"
    [ -n "$first" ] || continue
    printf '  %-32s %4d .. %4d s\n' "${step%%:*}" $(( $(sod "$first") - start )) $(( $(sod "$last") - start ))
  done
  # The installer's own DHCP: the first ACK after the last boot script (the installer itself
  # comes over HTTP from the install listener).
  first="$(awk -v t="$ipxe" '$3 > t && /DHCPACK/ { print $3; exit }' "$log")"
  [ -n "$first" ] && printf '  %-32s %4d s\n' "installer kernel up (its DHCP)" $(( $(sod "$first") - start ))
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
    t0=$(now) clock="$(date +%T)"
    id="$("$vcctl" --url "http://127.0.0.1:$port" deploy "$work/four.cdl" 2>/dev/null | tail -n1)"
    t=$(minus "$(now)" "$t0")
    phase="$("$vcctl" --url "http://127.0.0.1:$port" status "$id" | awk '/^Phase/ {print $2}')"
    [ "$phase" = ready ] || { echo "$mode: cluster $id ended $phase" >&2; tail -20 "$work/serve-$mode.log" >&2; exit 1; }
    times+=("$t")
    if [ "$mode" = pxe ]; then
      breakdown="$(pxe_breakdown "$clock" "$(ls "$work"/data/site/pnode*/state/gw-*/dnsmasq.log | head -n1)")
  ready                            $(printf '%4.0f' "$t") s"
    fi
    "$vcctl" --url "http://127.0.0.1:$port" destroy "$id" >/dev/null
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
[ -n "${breakdown:-}" ] && printf 'PXE, last run, seconds after deploy started (first .. last node):\n%s\n' "$breakdown"
true
