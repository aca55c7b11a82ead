#!/usr/bin/env bash
# Builds the virtual-node boot image used by vcds-site: Debian's cloud kernel plus a busybox
# initramfs whose /init loads the virtio modules (network and disk), configures eth0 from the
# kernel command line and prints `VCDS-NODE-UP <hostname>` on the serial console.
#
# Output (cached; rebuilt with --force or when the kernel package or this script changes):
#   $VCDS_CACHE_DIR/node/vmlinuz, $VCDS_CACHE_DIR/node/initrd.img, $VCDS_CACHE_DIR/node/stamp
# VCDS_CACHE_DIR defaults to /var/cache/vcds for root, else ${XDG_CACHE_HOME:-~/.cache}/vcds.
# The kernel is the candidate of linux-image-cloud-amd64, as in the base images vcds-image
# builds: a node installed onto its disk goes on running this kernel with the disk's modules.
#
# Kernel command line understood by /init:
#   vcds.hostname=NAME          host name, printed in the marker (default: the DHCP lease's)
#   vcds.ip=A.B.C.D/NN | dhcp   static address for eth0, or busybox udhcpc
#   vcds.ping=IP[,IP...]        after boot, ping each IP (up to ~60 s) and print
#                               `VCDS-PING-OK IP` or `VCDS-PING-FAIL IP`
#   vcds.ks=URL                 install first (Rocks' path, /bin/vcds-install): fetch this
#                               node's kickstart from URL (?mac=eth0's MAC), report
#                               started/finished/failed to URL's /install/progress, run %pre,
#                               install, run %post chrooted into the installed root, then
#                               switch_root into it. Markers `VCDS-INSTALL ...`; a failure is
#                               reported with its reason. Where it installs:
#                               - no disk: a tmpfs root with busybox, %packages recorded in
#                                 /var/lib/vcds/packages, its /init prints the markers below;
#                               - a disk /dev/vda holding a vcds base image (ext4 with
#                                 /etc/vcds/image, see service/image): mounted as the root;
#                                 every %packages name (not @groups, not -exclusions) must be
#                                 installed there (dpkg status), else the install fails naming
#                                 the missing ones (--ignoremissing or not: the image was built
#                                 for the kickstart, a missing package is a wrong image); the image's kernel modules must be this
#                                 kernel's; the filesystem grows to the disk; the node gets its
#                                 host name (`network --hostname` of the kickstart, else as
#                                 above), a first /etc/hosts and a machine id (network, hosts
#                                 and host keys are the rolls' %post); %post
#                                 runs chrooted with /proc, /sys and /dev; the disk is marked
#                                 /var/lib/vcds/installed; then the disk's systemd boots, and
#                                 reports `finished` once sshd runs and every readiness check
#                                 of /etc/vcds/ready.d (a roll's) passes, else `failed` with
#                                 the check's last line (vcds-report-ready.service, once: a
#                                 node that reports ready is usable).
#   vcds.root=DEV               no install: boot the system installed on DEV (its /sbin/init)
# Console markers: `VCDS-NODE-ADDR A.B.C.D/NN` (eth0's address), then `VCDS-NODE-UP <hostname>`
# (the diskless paths only: a disk's systemd prints none).
# Also installs the host side: qemu-system-x86 (the VM runner), the build/probe tools and what
# vcds-image builds base images with (mmdebstrap, apt-utils, e2fsprogs, qemu-utils).
set -euo pipefail

force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$(id -u)" = 0 ]; then
  cache="${VCDS_CACHE_DIR:-/var/cache/vcds}"
else
  cache="${VCDS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vcds}"
fi
out="$cache/node"
debs="$cache/debs"
mkdir -p "$out" "$debs"

# Host packages: QEMU to run nodes; cpio, gzip, xz and kmod (depmod) to build the image;
# ping and dnsmasq (DHCP/TFTP for network boot and the GW-node) for vcds-site's root tests;
# nftables (the GW-node's NAT); for the GW-node root tests curl (TFTP client), busybox (udhcpc,
# the DHCP client of a node namespace) and socat (TCP listeners that report the peer address);
# base images: mmdebstrap, apt-utils (apt-ftparchive), e2fsprogs (mke2fs -d), qemu-utils
# (qemu-img); genisoimage (the NoCloud seeds of cloud-image nodes); openssh-client for the
# disk-install root test.
host_packages=(qemu-system-x86 cpio gzip xz-utils kmod iputils-ping dnsmasq-base nftables curl
               tcpdump busybox socat mmdebstrap apt-utils e2fsprogs qemu-utils genisoimage
               openssh-client)
missing_host_packages() {
  need_apt=()
  for pkg in "${host_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
  done
  [ ${#need_apt[@]} -gt 0 ]
}
# Twice: installing one may remove another (a backports qemu-utils newer than the
# qemu-system-x86 it conflicts with goes, and bookworm's own is installed in the second pass).
for _ in 1 2; do
  missing_host_packages || break
  [ "$(id -u)" = 0 ] || { echo "need root to install: ${need_apt[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
done
if missing_host_packages; then
  echo "could not install: ${need_apt[*]}" >&2
  exit 1
fi

# Debian's cloud kernel is built for VMs: under TCG it boots in about half the CPU time of the
# generic linux-image-amd64 (VCDS_KERNEL_PACKAGE selects another one). The metapackage names the
# concrete kernel package (e.g. linux-image-6.1.0-56-cloud-amd64).
kmeta="${VCDS_KERNEL_PACKAGE:-linux-image-cloud-amd64}"
kpkg="$(apt-cache depends "$kmeta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$kpkg" ]; then
  apt-get update -qq
  kpkg="$(apt-cache depends "$kmeta" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
fi
[ -n "$kpkg" ] || { echo "cannot resolve $kmeta" >&2; exit 1; }

# The cache is valid for this kernel package and this version of the script (its /init).
stamp="$kpkg $(sha256sum < "$0" | cut -c1-16)"
if [ "$force" = 0 ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] \
   && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "cached: $out/vmlinuz $out/initrd.img ($stamp)"
  exit 0
fi

# apt-get download writes into the current directory; keep the .debs for the next build, but
# only the current kernel's.
find "$debs" -name 'linux-image-*.deb' ! -name "${kpkg}_*" -delete
(cd "$debs" && for p in "$kpkg" busybox-static; do
   ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -q -o APT::Sandbox::User=root "$p"
 done)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$(ls "$debs/${kpkg}"_*.deb | head -n1)" "$work/k"
dpkg-deb -x "$(ls "$debs"/busybox-static_*.deb | head -n1)" "$work/bb"

kver="$(ls "$work/k/lib/modules" | head -n1)"
moddir="$work/k/lib/modules/$kver"
# The package ships no modules.dep (its postinst runs depmod); generate it in the extracted tree.
depmod -b "$work/k" "$kver"
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,etc,lib/modules,tmp,usr/share/udhcpc}
cp "$work/bb/bin/busybox" "$root/bin/busybox"

# Resolve load order from modules.dep: dependencies first, each module once.
declare -A seen=()
order=()
add_module() {
  local name="$1" line path dep
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  line="$(grep -E "/${name}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" || true)"
  if [ -z "$line" ]; then
    grep -qE "/${name}\.ko$" "$moddir/modules.builtin" 2>/dev/null \
      || { echo "module $name neither in modules.dep nor builtin" >&2; exit 1; }
    return 0
  fi
  path="${line%%:*}"
  for dep in ${line#*:}; do
    dep="$(basename "$dep")"
    add_module "${dep%%.ko*}"
  done
  order+=("$name:$path")
}
for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         failover net_failover virtio_net virtio_blk; do
  add_module "$m"
done

: > "$root/etc/vcds-modules"
for entry in "${order[@]}"; do
  name="${entry%%:*}"
  path="${entry#*:}"
  case "$path" in
    *.ko.xz) xz -dc "$moddir/$path" > "$root/lib/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$moddir/$path" > "$root/lib/modules/$name.ko" ;;
    *.ko) cp "$moddir/$path" "$root/lib/modules/$name.ko" ;;
  esac
  echo "$name" >> "$root/etc/vcds-modules"
done

cat > "$root/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc hook (passed with -s: builds differ on the default path): apply the lease.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    [ -n "$hostname" ] && echo "$hostname" > /tmp/dhcp-hostname
    ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
EOF
chmod +x "$root/usr/share/udhcpc/default.script"

cat > "$root/bin/vcds-install" <<'EOF'
#!/bin/sh
# vcds-install KS_URL: Rocks' install path on busybox. Every script runs under busybox sh
# (ash), whatever its --interpreter; a script that exits non-zero fails the install.
ks="$1"
# The installer's busybox is in /bin; a disk root's tools (resize2fs, %post's) in the others.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mac="$(cat /sys/class/net/eth0/address)"
base="${ks%/sbin/kickstart.cgi}"
say() { echo "VCDS-INSTALL $*"; }
report() {
  msg="$(printf '%s' "${2:-}" | tr -c 'A-Za-z0-9._:/-' '+' | cut -c1-200)"
  for _ in $(seq 30); do
    wget -q -O /dev/null "$base/progress?state=$1&mac=$mac&msg=$msg" && return 0
    sleep 2
  done
  say "cannot report $1 to $base/progress"
  return 1
}
fail() { say "FAILED $*"; report failed "$*"; exit 1; }
# No disk: a tmpfs root with busybox, the packages recorded only.
tmpfs_root() {
  mount -t tmpfs -o size=64m,mode=755 tmpfs /sysroot || fail "cannot mount the installed root"
  mkdir -p /sysroot/bin /sysroot/etc /sysroot/tmp /sysroot/proc /sysroot/sys /sysroot/dev \
           /sysroot/var/log /sysroot/var/lib/vcds /sysroot/root
  cp /bin/busybox /sysroot/bin/busybox
  chroot /sysroot /bin/busybox --install -s /bin
  hostname > /sysroot/etc/hostname
  cat /tmp/ks/*-packages 2>/dev/null | grep -v '^[[:space:]]*$' > /sysroot/var/lib/vcds/packages
  say "recorded $(wc -l < /sysroot/var/lib/vcds/packages) packages"
}
finish_tmpfs_root() {
  cat > /sysroot/init <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname "$(cat /etc/hostname)"
echo "VCDS-INSTALLED $(hostname) $(wc -l < /var/lib/vcds/packages) packages"
exec /bin/sh /etc/vcds-up
INIT
  chmod +x /sysroot/init
  cp /etc/vcds-up /sysroot/etc/vcds-up
}
# A disk: the base image's root filesystem on /dev/vda, installed in place.
disk_root() {
  mount -t ext4 -o noinit_itable /dev/vda /sysroot \
    || fail "cannot mount /dev/vda as ext4: the disk holds no base image"
  [ -f /sysroot/etc/vcds/image ] || fail "/dev/vda holds no vcds base image (no /etc/vcds/image)"
  kver="$(uname -r)"
  [ -d "/sysroot/lib/modules/$kver" ] \
    || fail "the image has no modules of the installer's kernel $kver, only: $(ls /sysroot/lib/modules | tr '\n' ' ')"
  missing="$(awk '
    FNR == NR { want[$1] = 1; next }
    /^Package: / { p = $2 }
    /^Status: / && $2 == "install" && $NF == "installed" { have[p] = 1 }
    END { for (w in want) if (!(w in have)) print w }
  ' /tmp/ks-packages /sysroot/var/lib/dpkg/status | sort | tr '\n' ' ')"
  [ -z "$missing" ] || fail "the image lacks packages: ${missing% }"
  mkdir -p /sysroot/var/lib/vcds
  cp /tmp/ks-packages /sysroot/var/lib/vcds/packages
  say "image $(sed -n 's/^key //p' /sysroot/etc/vcds/image) holds the $(wc -l < /tmp/ks-packages) packages"
  mount -t proc proc /sysroot/proc && mount -t sysfs sysfs /sysroot/sys \
    && mount -t devtmpfs devtmpfs /sysroot/dev || fail "cannot mount /proc, /sys and /dev in the disk root"
  log=/sysroot/var/log/vcds-install.log
  chroot /sysroot resize2fs /dev/vda >> "$log" 2>&1 || fail "cannot grow the filesystem: $(tail -n 1 "$log")"
  say "filesystem grown to $(df -h /sysroot | awk 'NR == 2 {print $2}')"
  kshost="$(sed -n 's/^network .*--hostname[= ]\([^ ]*\).*/\1/p' /tmp/ks.cfg | head -n 1)"
  [ -n "$kshost" ] && hostname "$kshost"
  hostname > /sysroot/etc/hostname
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$(hostname)" > /sysroot/etc/hosts
  tr -d '-' < /proc/sys/kernel/random/uuid > /sysroot/etc/machine-id
}
say "fetching $ks"
for _ in $(seq 60); do
  wget -q -O /tmp/ks.cfg "$ks?mac=$mac" && break
  rm -f /tmp/ks.cfg
  sleep 2
done
[ -s /tmp/ks.cfg ] || { say "FAILED cannot fetch $ks"; exit 1; }
report started
mkdir -p /tmp/ks
# One file per %pre/%post/%packages section, numbered in kickstart order; headers beside them.
awk '
  /^%(pre|post|packages)([ \t]|$)/ { n++; sec = substr($1, 2); f = sprintf("/tmp/ks/%02d-%s", n, sec)
                                     print > (f ".hdr"); printf "" > f; next }
  /^%end/ { sec = ""; next }
  sec != "" { print > f }
' /tmp/ks.cfg || fail "cannot split the kickstart"
for f in /tmp/ks/*-pre; do
  [ -e "$f" ] || continue
  say "%pre $(basename "$f")"
  sh "$f" >> /tmp/ks-pre.log 2>&1 || fail "%pre $(basename "$f") exited $?: $(tail -n 1 /tmp/ks-pre.log)"
done
# The names %packages gives, one per line: neither @groups nor -exclusions.
cat /tmp/ks/*-packages 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n\n' | grep -v -e '^$' -e '^[@-]' \
  | sort -u > /tmp/ks-packages
mkdir -p /sysroot
if [ -b /dev/vda ]; then
  disk_root
else
  tmpfs_root
fi
cp /tmp/ks.cfg /sysroot/root/vcds-ks.cfg
# Where the site's install endpoints are and who this node is there, for the reports the
# installed system makes itself (a roll's, such as the frontend's scheduler report).
mkdir -p /sysroot/etc/vcds
printf 'VCDS_INSTALL=%s\nVCDS_MAC=%s\n' "$base" "$mac" > /sysroot/etc/vcds/site
for f in /tmp/ks/*-post; do
  [ -e "$f" ] || continue
  name="$(basename "$f")"
  say "%post $name"
  if grep -q -- '--nochroot' "$f.hdr"; then
    sh "$f" >> /sysroot/var/log/vcds-install.log 2>&1
  else
    # Its --interpreter when the installed root has it (a disk's bash), else sh.
    interp="$(sed -n 's/.*--interpreter[= ]\([^ ]*\).*/\1/p' "$f.hdr")"
    [ -n "$interp" ] && [ -x "/sysroot$interp" ] || interp=/bin/sh
    cp "$f" "/sysroot/tmp/$name"
    chroot /sysroot "$interp" "/tmp/$name" >> /sysroot/var/log/vcds-install.log 2>&1
  fi || fail "%post $name exited $?: $(tail -n 1 /sysroot/var/log/vcds-install.log)"
  rm -f "/sysroot/tmp/$name"
done
if [ -b /dev/vda ]; then
  echo "installed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $ks for $mac" > /sysroot/var/lib/vcds/installed
  # Finished is what the installed system says, once it serves logins: a node that reports
  # ready is usable. bash's /dev/tcp needs no package the rolls did not ask for.
  hostport="${base#http://}"; hostport="${hostport%%/*}"
  host="${hostport%%:*}"; port="${hostport#*:}"; [ "$port" = "$hostport" ] && port=80
  path="/${base#http://*/}/progress"
  mkdir -p /sysroot/usr/local/sbin /sysroot/etc/systemd/system/multi-user.target.wants
  cat > /sysroot/usr/local/sbin/vcds-report-ready <<READY
#!/bin/bash
# Tells the site this node is up (installed by vcds's installer; runs once, after sshd):
# finished once every readiness check in /etc/vcds/ready.d passes (a roll's, such as the
# scheduler seeing every node), else failed with the first failing check's last line.
# A failed connect in a subshell ends only the subshell.
report() (
  exec 3<>/dev/tcp/$host/$port || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: $host\r\n\r\n' "\$1" >&3
  read -r status <&3
  case "\$status" in *" 204 "*|*" 200 "*) exit 0 ;; *) exit 1 ;; esac
)
query="state=finished"
for check in /etc/vcds/ready.d/*; do
  [ -x "\$check" ] || continue
  if ! out="\$(timeout 540 "\$check" 2>&1)"; then
    why="readiness check \${check##*/}: \$(printf '%s\n' "\$out" | tail -n 1)"
    query="state=failed&msg=\$(printf '%s' "\$why" | head -c 400 | od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g')"
    break
  fi
done
for _ in \$(seq 60); do
  report "$path?\$query&mac=$mac" && { touch /var/lib/vcds/ready-reported; exit 0; }
  sleep 2
done
exit 1
READY
  chmod 755 /sysroot/usr/local/sbin/vcds-report-ready
  cat > /sysroot/etc/systemd/system/vcds-report-ready.service <<'UNIT'
[Unit]
Description=Tell the vcds site this node is installed and serves logins
After=ssh.service networking.service
ConditionPathExists=!/var/lib/vcds/ready-reported

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vcds-report-ready

[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/vcds-report-ready.service \
    /sysroot/etc/systemd/system/multi-user.target.wants/vcds-report-ready.service
  umount /sysroot/dev /sysroot/sys /sysroot/proc
  # The install is on the disk before anyone hears of it.
  sync
  echo /sbin/init > /tmp/vcds-init
  say "installed; the installed system reports finished once it serves logins"
else
  finish_tmpfs_root
  echo /init > /tmp/vcds-init
  report finished || exit 1
  say "finished"
fi
EOF
chmod +x "$root/bin/vcds-install"

# What a node runs once its network is up (the image's own boot, or the installed root's).
cat > "$root/etc/vcds-up" <<'EOF'
host="$(hostname)"
ping="$(sed -n 's/.*vcds.ping=\([^ ]*\).*/\1/p' /proc/cmdline)"
echo "VCDS-NODE-ADDR $(ip -4 addr show dev eth0 | awk '/inet / {print $2}')"
echo "VCDS-NODE-UP $host"
for target in $(echo "$ping" | tr ',' ' '); do
  result=FAIL
  for _ in $(seq 60); do
    if ping -c 1 -W 1 "$target" >/dev/null 2>&1; then result=OK; break; fi
  done
  echo "VCDS-PING-$result $target"
done
# PID 1 must not exit (that panics the kernel); nothing reads the console.
while :; do sleep 3600; done
EOF

cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/vcds-modules); do insmod "/lib/modules/$m.ko" || echo "VCDS-ERROR insmod $m"; done

host= ip=dhcp ks= root=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vcds.hostname=*) host="${arg#*=}" ;;
    vcds.ip=*) ip="${arg#*=}" ;;
    vcds.ks=*) ks="${arg#*=}" ;;
    vcds.root=*) root="${arg#*=}" ;;
  esac
done
# Into the system on a disk: its systemd finds /dev, /proc and /sys mounted, as after any
# initramfs.
boot_disk() {
  for d in dev proc sys; do mount -o move "/$d" "/sysroot/$d"; done
  exec switch_root /sysroot /sbin/init
}
if [ -n "$root" ]; then
  mkdir -p /sysroot
  mount -t ext4 -o noinit_itable "$root" /sysroot && boot_disk
  echo "VCDS-ERROR cannot boot $root"
  while :; do sleep 3600; done
fi
hostname "${host:-node}"
ip link set lo up
ip link set eth0 up
if [ "$ip" = dhcp ]; then
  udhcpc -i eth0 -s /usr/share/udhcpc/default.script -q -t 10 -T 1 -n || echo "VCDS-ERROR dhcp"
  [ -z "$host" ] && [ -s /tmp/dhcp-hostname ] && hostname "$(cat /tmp/dhcp-hostname)"
else
  ip addr add "$ip" dev eth0
fi
if [ -n "$ks" ]; then
  if /bin/vcds-install "$ks"; then
    [ "$(cat /tmp/vcds-init)" = /sbin/init ] && boot_disk
    exec switch_root /sysroot /init
  fi
  echo "VCDS-INSTALL-FAILED $(hostname)"
  while :; do sleep 3600; done
fi
exec /bin/sh /etc/vcds-up
EOF
chmod +x "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initrd.img.tmp"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$stamp" > "$out/stamp"
echo "built: $out/vmlinuz $out/initrd.img ($kpkg, modules: $(tr '\n' ' ' < "$root/etc/vcds-modules"), initrd $(du -k "$out/initrd.img" | cut -f1) KiB)"
