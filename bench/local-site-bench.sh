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
# The diskless modes run `--nodes diskless`. Real nodes (modes `rocks` and `image`, the
# descriptor's vc:installer): a frontend and 2 computes installed onto their disks as booked
# (frontend 2 GiB, computes 1 GiB), from descriptor to `vcctl ssh SYSTEM -- true` answering,
# against one bare boot of the same installed image (the compute's base image straight to
# systemd's multi-user target; target: <= 4 x, and <= 60 s with the images cached). The first
# run of each mode starts from an empty image cache and package repository (VCDS_CACHE_DIR in
# the work directory): its base images are built cold (packages fetched from apt's sources and
# installed); the runs after it are warm (cache hit, 0 packages fetched). Also printed: disk
# bytes each node's overlay holds after its install, and each VM's memory (QEMU's RSS).
#
# Needs root and the node image (scripts/build-node-image.sh); builds a release vcds and vcctl
# unless VCDS_BIN names the server (vcctl is then the one beside it, or VCCTL_BIN).
# Env: RUNS (default 3), MODES (default "direct pxe rocks image").
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
modes="${MODES:-direct pxe rocks image}"
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces, bridges, QEMU)" >&2; exit 1; }
# One local site at a time on this machine (the host's route to the outside network goes
# through one site's leg): the root tests take the same lock.
exec 9>/run/vcds-local-site.lock
flock 9
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
  case "$mode" in direct|pxe) ;; *) continue ;; esac
  mkdir -p "$work/data"
  "$vcds" serve --local-prefix "$prefix" --data-dir "$work/data" --listen "127.0.0.1:$port" \
    --boot "$mode" --nodes diskless --roll-root rolls --roll rolls/vcds-base \
    --roll rolls/vcds-compute 2> "$work/serve-$mode.log" &
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

# Real nodes: the compute's base image booted bare, then clusters of each installer.
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
real_cdl() {
  cat <<EOF
<?xml version="1.0"?>
<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0"
    xmlns:vc="urn:vcds:2026:cdl">
  <cdl:import location="vcds:cluster"/>
  <cdl:system>
    <real cdl:extends="vc:Cluster">
      <vc:name>real</vc:name>
      <vc:reservation><vc:duration>PT1H</vc:duration></vc:reservation>
      <vc:gateway><vc:forward protocol="tcp" port="22" external="2222"/></vc:gateway>
      <vc:login><vc:user>bench</vc:user><vc:authorizedKey>$(cat "$work/key.pub")</vc:authorizedKey></vc:login>
      <vc:installer>$1</vc:installer>
    </real>
  </cdl:system>
</cdl:cdl>
EOF
}
# Seconds for the base image in $1 to boot from a fresh overlay to systemd's multi-user target.
bare_installed() {
  local dir="$1" log="$work/bare-disk.log" disk="$work/bare-disk.qcow2" t0 pid
  qemu-img create -q -f qcow2 -F qcow2 -b "$dir/disk.qcow2" "$disk"
  : > "$log"
  t0=$(now)
  qemu-system-x86_64 -name "bare-$$-disk" -nodefaults -no-user-config -accel tcg -m 1024 -smp 1 \
    -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
    -append "root=/dev/vda rw rootflags=noinit_itable console=ttyS0 quiet panic=1 systemd.show_status=1" \
    -drive "file=$disk,format=qcow2,if=virtio" \
    -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile= \
    -nographic -serial "file:$log" -monitor none -no-reboot &
  pid=$!
  until grep -q "Reached target.*Multi-User" "$log" 2>/dev/null; do sleep 0.05; done
  minus "$(now)" "$t0"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$disk"
}
declare -A real_cold real_warm real_bytes real_rss real_built
bare_disk=()
for mode in $modes; do
  case "$mode" in rocks|image) ;; *) continue ;; esac
  real_cdl "$mode" > "$work/real.cdl"
  # An empty cache (with the node image built above), so the first run builds cold.
  cache="$work/cache-$mode"
  mkdir -p "$cache" "$work/data"
  ln -s "$image" "$cache/node"
  VCDS_CACHE_DIR="$cache" "$vcds" serve --local-prefix "$prefix" --data-dir "$work/data" \
    --listen "127.0.0.1:$port" --nodes installed 2> "$work/serve-$mode.log" &
  server=$!
  until curl -s -o /dev/null "http://127.0.0.1:$port/wsrf/services/Portal?wsdl"; do sleep 0.1; done
  times=()
  for run in $(seq 0 "$runs"); do
    t0=$(now)
    id="$("$vcctl" --url "http://127.0.0.1:$port" deploy "$work/real.cdl" 2>/dev/null | tail -n1)"
    until "$vcctl" --url "http://127.0.0.1:$port" ssh "$id" -i "$work/key" -- true \
        </dev/null >/dev/null 2>&1; do
      phase="$("$vcctl" --url "http://127.0.0.1:$port" status "$id" | awk '/^Phase/ {print $2}')"
      case "$phase" in ready|installing|provisioning) ;; *)
        echo "$mode: cluster $id ended $phase" >&2; tail -20 "$work/serve-$mode.log" >&2; exit 1 ;;
      esac
      sleep 0.2
    done
    t=$(minus "$(now)" "$t0")
    if [ "$run" = 0 ]; then
      real_cold[$mode]="$t"
      real_built[$mode]="$(grep -o 'base image [0-9a-f]*: built in [0-9]* s, [0-9]* packages fetched' \
        "$work/serve-$mode.log" | sed 's/base image \([0-9a-f]\{12\}\)[0-9a-f]*/\1/' | paste -sd ';' -)"
    else
      times+=("$t")
    fi
    if [ "$run" = "$runs" ]; then
      real_bytes[$mode]="$(for f in "$work"/data/site/pnode*/state/*."$id".disk.qcow2; do
        qemu-img info -U --output=json "$f" | awk -F': ' '/"actual-size"/ {gsub(/,/, "", $2); print $2}'
      done | awk '{ s += $1; n++ } END { printf "%.0f MiB per node (%d nodes)", s / n / 1048576, n }')"
      real_rss[$mode]="$(pgrep -f "qemu-system-x86_64 -name [^ ]*\.$id" | while read -r pid; do
        ps -o rss= -p "$pid"; done | awk '{ printf "%s%d", (NR > 1 ? ", " : ""), $1 / 1024 } END { print " MiB" }')"
      if [ ${#bare_disk[@]} = 0 ]; then
        compute_image="$(grep -l '"openmpi-bin"' "$cache"/images/*/manifest.json | head -n1)"
        for _ in $(seq "$runs"); do bare_disk+=("$(bare_installed "$(dirname "$compute_image")")"); done
      fi
    fi
    "$vcctl" --url "http://127.0.0.1:$port" destroy "$id" >/dev/null
    sleep 3 # the reconciler takes the cluster down before the next run
  done
  real_warm[$mode]="$(printf '%s\n' "${times[@]}" | median)"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  "$vcds" site-down --local-prefix "$prefix" --data-dir "$work/data" >/dev/null
  rm -rf "$work/data" "$cache"
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
if [ ${#bare_disk[@]} -gt 0 ]; then
  disk_one="$(printf '%s\n' "${bare_disk[@]}" | median)"
  printf 'bare boot of the installed compute image to multi-user: %6.2f s\n' "$disk_one"
  for mode in $modes; do
    [ -n "${real_warm[$mode]:-}" ] || continue
    printf 'descriptor -> SSH answering, frontend + 2 computes, %-6s warm %6.2f s (ratio %s), cold %6.2f s\n' \
      "$mode:" "${real_warm[$mode]}" "$(ratio "${real_warm[$mode]}" "$disk_one")" "${real_cold[$mode]}"
    printf '  cold image builds: %s\n  disk written: %s\n  memory per VM: %s\n' \
      "${real_built[$mode]}" "${real_bytes[$mode]}" "${real_rss[$mode]}"
  done
fi
[ -n "${breakdown:-}" ] && printf 'PXE, last run, seconds after deploy started (first .. last node):\n%s\n' "$breakdown"
true
