//! The installer's boot files for network boot: its kernel and initramfs and the iPXE script
//! that boots them with the kickstart URL the GW-node hands out (DHCP option 224), in a
//! directory dnsmasq serves over TFTP and [`crate::http::boot_routes`] over HTTP.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The installer image's files, as iPXE fetches them.
const FILES: [&str; 2] = ["vmlinuz", "initrd.img"];
/// The iPXE script in the TFTP root: the boot file DHCP names.
pub const IPXE_SCRIPT: &str = "boot.ipxe";

/// The boot files' directory. dnsmasq reads it as `nobody`, so it and its parents up to the
/// site's public directory are world-readable; the data directory may stay private.
#[derive(Debug, Clone)]
pub struct BootFiles {
    pub dir: PathBuf,
}

impl BootFiles {
    /// Copies the installer's `kernel` and `initrd` in and writes the iPXE script, which
    /// fetches them over HTTP from `base_url` (`http://HOST:PORT`).
    pub fn prepare(&self, kernel: &Path, initrd: &Path, base_url: &str) -> std::io::Result<()> {
        let root = &self.dir;
        std::fs::create_dir_all(root)?;
        for dir in root.ancestors().take(3) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
        for (from, to) in [kernel, initrd].into_iter().zip(FILES) {
            std::fs::copy(from, root.join(to))?;
            std::fs::set_permissions(root.join(to), std::fs::Permissions::from_mode(0o644))?;
        }
        let [kernel, initrd] = FILES.map(|f| format!("{base_url}/install/boot/{f}"));
        std::fs::write(
            root.join(IPXE_SCRIPT),
            format!(
                "#!ipxe\n\
                 kernel {kernel} console=ttyS0 quiet panic=1 \
                 vcds.hostname=${{hostname}} vcds.ip=dhcp vcds.ks=${{224:string}}\n\
                 initrd {initrd}\n\
                 boot\n"
            ),
        )?;
        std::fs::set_permissions(
            root.join(IPXE_SCRIPT),
            std::fs::Permissions::from_mode(0o644),
        )
    }

    /// Where boot file `name` is, if it is one (nothing else of the directory is served).
    pub fn path_of(&self, name: &str) -> Option<PathBuf> {
        FILES.contains(&name).then(|| self.dir.join(name))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn prepares_the_files_and_serves_only_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (kernel, initrd) = (tmp.path().join("k"), tmp.path().join("i"));
        std::fs::write(&kernel, b"kernel").unwrap();
        std::fs::write(&initrd, b"initrd").unwrap();
        let boot = BootFiles {
            dir: tmp.path().join("public/tftp"),
        };
        boot.prepare(&kernel, &initrd, "http://198.19.0.1:80")
            .unwrap();
        let script = std::fs::read_to_string(boot.dir.join(IPXE_SCRIPT)).unwrap();
        assert!(script.contains("kernel http://198.19.0.1:80/install/boot/vmlinuz "));
        assert!(script.contains("initrd http://198.19.0.1:80/install/boot/initrd.img"));
        assert_eq!(
            std::fs::read(boot.path_of("vmlinuz").unwrap()).unwrap(),
            b"kernel"
        );
        assert!(boot.path_of(IPXE_SCRIPT).is_none());
        assert!(boot.path_of("../k").is_none());
    }
}
