//! What the builder changes in a fresh Debian root so that it boots fast under TCG as a VM
//! from its virtio disk and is reached over SSH, as data (applied by [`crate::cache`]). Each
//! step was measured: see the comments.

use std::fmt::Write as _;

use crate::packages::hex_sha256;

/// One change to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write a file (parents created) with this mode.
    Write {
        path: &'static str,
        contents: &'static str,
        mode: u32,
    },
    /// Remove a file if it exists.
    Remove(&'static str),
    /// `systemctl ARGS` inside the root (offline: it only edits symlinks).
    Systemctl(Vec<&'static str>),
}

impl Step {
    fn describe(&self, out: &mut String) {
        let _ = match self {
            Step::Write {
                path,
                contents,
                mode,
            } => writeln!(
                out,
                "write {path} {mode:o} {}",
                hex_sha256(contents.as_bytes())
            ),
            Step::Remove(path) => writeln!(out, "remove {path}"),
            Step::Systemctl(args) => writeln!(out, "systemctl {}", args.join(" ")),
        };
    }
}

/// Written after Debian's essential packages and before the others, so that the kernel's
/// package builds its initramfs once, already small: only the disk's modules (`MODULES=most`
/// made it 15 MB; this, 5.7 MB).
pub const EARLY: [Step; 2] = [
    Step::Write {
        path: "/etc/initramfs-tools/conf.d/vcds",
        contents: "# vcds: the initramfs needs only the virtio disk (see hooks/vcds).\n\
                   MODULES=list\nCOMPRESS=gzip\n",
        mode: 0o644,
    },
    Step::Write {
        path: "/etc/initramfs-tools/hooks/vcds",
        contents: "#!/bin/sh\n\
                   # vcds: a node's root is ext4 (built into the kernel) on virtio-blk.\n\
                   [ \"$1\" = prereqs ] && exit 0\n\
                   . /usr/share/initramfs-tools/hook-functions\n\
                   manual_add_modules virtio_pci virtio_blk\n",
        mode: 0o755,
    },
];

/// Units no virtual node needs at boot. Measured under TCG, each cost 0.3–5 s of boot or
/// writes to the disk behind the node's back.
const MASKED: &[&str] = &[
    // Periodic maintenance jobs: the cluster manages its nodes.
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    // Nobody logs in on a console: the serial line carries the installer's markers.
    "getty.target",
    "getty-static.service",
    // Nothing waits for network-online.target (sshd is socket-activated).
    "systemd-networkd-wait-online.service",
    // The kernel command line carries no ip= and no pstore/binfmt/debugfs users.
    "systemd-network-generator.service",
    "systemd-pstore.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    // Loaded on demand by whatever needs loop or device-mapper devices.
    "modprobe@loop.service",
    "modprobe@dm_mod.service",
    // utmp/wtmp records (`who`, `last`) are not worth a unit on the boot path.
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
    // The journal is in memory: nothing to flush.
    "systemd-journal-flush.service",
    // Loaded on demand (configfs by LIO's tools, fuse when /dev/fuse is opened).
    "modprobe@configfs.service",
    "modprobe@fuse.service",
    "sys-fs-fuse-connections.mount",
    // On the boot's critical path (0.9 s): the builder writes its static device nodes once
    // (see [`static_nodes`]).
    "kmod-static-nodes.service",
];

/// Where the builder writes [`static_nodes`] of the image's kernel.
pub const STATIC_NODES: &str = "/etc/tmpfiles.d/vcds-static-nodes.conf";

/// The tmpfiles.d lines `kmod static-nodes --format=tmpfiles` makes at every boot from a
/// kernel's `modules.devname` (`MODULE DEVNAME TYPEMAJOR:MINOR`): device nodes such as
/// /dev/net/tun and /dev/fuse, whose opening loads their module.
pub fn static_nodes(modules_devname: &str) -> String {
    let mut out = String::new();
    for line in modules_devname.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = line.split_whitespace();
        let (Some(_module), Some(devname), Some(node)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(kind @ ('c' | 'b')) = node.chars().next() else {
            continue;
        };
        if let Some((dir, _)) = devname.rsplit_once('/') {
            let _ = writeln!(out, "d /dev/{dir} 0755 - - -");
        }
        let _ = writeln!(out, "{kind}! /dev/{devname} 0600 - - - {}", &node[1..]);
    }
    out
}

/// Applied after every package is installed.
pub fn plan() -> Vec<Step> {
    let mut steps = vec![
        // No root entry: the kernel mounts /dev/vda read-write (`rw` on its command line), so
        // systemd neither remounts it nor waits ~6 s for dev-vda.device nor runs fsck.
        Step::Remove("/etc/fstab"),
        // A symlink to an /etc/modules of comments, which starts systemd-modules-load.
        Step::Remove("/etc/modules-load.d/modules.conf"),
        // Host keys are the node's own: the installer makes them.
        Step::Remove("/etc/ssh/ssh_host_rsa_key"),
        Step::Remove("/etc/ssh/ssh_host_rsa_key.pub"),
        Step::Remove("/etc/ssh/ssh_host_ecdsa_key"),
        Step::Remove("/etc/ssh/ssh_host_ecdsa_key.pub"),
        Step::Remove("/etc/ssh/ssh_host_ed25519_key"),
        Step::Remove("/etc/ssh/ssh_host_ed25519_key.pub"),
        // So is munge's key (its package makes one): the cluster's comes with the kickstart.
        Step::Remove("/etc/munge/munge.key"),
        // Empty: the installer writes the node's own (DHCP client ids and journals use it).
        Step::Write {
            path: "/etc/machine-id",
            contents: "",
            mode: 0o444,
        },
        Step::Write {
            path: "/etc/hostname",
            contents: "localhost\n",
            mode: 0o644,
        },
        // The build's source (the local repository's copy://) means nothing on a node.
        Step::Write {
            path: "/etc/apt/sources.list",
            contents: "# vcds: the node's package sources are set by its kickstart.\n",
            mode: 0o644,
        },
        Step::Write {
            path: "/etc/ssh/sshd_config.d/vcds.conf",
            // ed25519 only: an RSA host key takes seconds to make under TCG.
            contents: "# vcds: keys only, the node's own ed25519 host key.\n\
                       HostKey /etc/ssh/ssh_host_ed25519_key\n\
                       PasswordAuthentication no\n",
            mode: 0o644,
        },
        Step::Write {
            path: "/etc/systemd/journald.conf.d/vcds.conf",
            // In memory: no flush service on the boot path, no journal writes to the overlay.
            contents: "[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n",
            mode: 0o644,
        },
        Step::Write {
            path: "/etc/systemd/network/99-vcds-default.network",
            // Any Ethernet interface by DHCP; the installer adds the node's own by MAC.
            contents: "[Match]\nType=ether\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\n\
                       IPv6AcceptRA=no\n\n[DHCPv4]\nClientIdentifier=mac\n",
            mode: 0o644,
        },
        Step::Systemctl(vec!["set-default", "multi-user.target"]),
        Step::Systemctl(vec!["enable", "systemd-networkd.service"]),
        // Socket activation: port 22 answers as soon as sockets.target, without waiting for
        // network.target (networkd's start is the slowest on the boot path).
        Step::Systemctl(vec!["disable", "ssh.service"]),
        Step::Systemctl(vec!["enable", "ssh.socket"]),
    ];
    steps.push(Step::Systemctl(
        std::iter::once("mask")
            .chain(MASKED.iter().copied())
            .collect(),
    ));
    steps
}

/// Kernel arguments that boot an installed node from its disk, after `root=/dev/vda rw`.
/// `noinit_itable`: the grown filesystem's new inode tables read as zeros from the sparse
/// overlay already; zeroing them would write gigabytes into it.
pub const DISK_BOOT_ARGS: &str = "rootflags=noinit_itable console=ttyS0 quiet panic=1";

/// A short hash of everything above, part of the content key: a change of tuning makes new
/// images.
pub fn fingerprint() -> String {
    let mut text = String::new();
    for step in EARLY.iter().chain(&plan()) {
        step.describe(&mut text);
    }
    text.push_str(DISK_BOOT_ARGS);
    hex_sha256(text.as_bytes())[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_masks_and_enables_what_the_boot_measurements_named() {
        let plan = plan();
        let mask = plan
            .iter()
            .find_map(|s| match s {
                Step::Systemctl(args) if args[0] == "mask" => Some(args.clone()),
                _ => None,
            })
            .unwrap_or_default();
        assert_eq!(mask.len(), MASKED.len() + 1);
        assert!(mask.contains(&"systemd-networkd-wait-online.service"));
        assert!(plan.contains(&Step::Systemctl(vec!["enable", "ssh.socket"])));
        assert!(plan.contains(&Step::Remove("/etc/fstab")));
        assert!(plan.iter().all(|s| match s {
            Step::Write { path, .. } | Step::Remove(path) => path.starts_with('/'),
            Step::Systemctl(_) => true,
        }));
    }

    #[test]
    fn static_nodes_are_what_kmod_would_make_at_boot() {
        let devname = "# Device nodes to trigger on-demand module loading.\n\
                       fuse fuse c10:229\n\
                       tun net/tun c10:200\n\
                       nonsense\n\
                       dm_mod mapper/control c10:236\n";
        assert_eq!(
            static_nodes(devname),
            "c! /dev/fuse 0600 - - - 10:229\n\
             d /dev/net 0755 - - -\n\
             c! /dev/net/tun 0600 - - - 10:200\n\
             d /dev/mapper 0755 - - -\n\
             c! /dev/mapper/control 0600 - - - 10:236\n"
        );
    }

    #[test]
    fn the_fingerprint_is_stable_and_short() {
        assert_eq!(fingerprint(), fingerprint());
        assert_eq!(fingerprint().len(), 16);
    }
}
