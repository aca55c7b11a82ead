//! A node's own disk: a qcow2 overlay whose backing file is a base image's disk, of the
//! node's booked size (sparse: it holds only what the node writes). The installer grows the
//! filesystem to it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::cache::ImageCache;
use crate::cmd::run;
use crate::Error;

/// What `qemu-img info` says of an overlay (or any image).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OverlayInfo {
    /// The size the guest sees.
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    /// Bytes the file takes on the host: what the node has written (plus qcow2 metadata).
    #[serde(rename = "actual-size")]
    pub actual_size: u64,
    #[serde(rename = "full-backing-filename")]
    pub backing: Option<PathBuf>,
}

fn overlay_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Overlay {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Creates the overlay `path` (absolute, not existing) of `size_bytes` on a base image's
/// disk (`BaseImage::disk`), and records it as a user of that image so the cache keeps the
/// image while the overlay exists.
pub fn create_overlay(base_disk: &Path, path: &Path, size_bytes: u64) -> Result<(), Error> {
    if !path.is_absolute() {
        return Err(overlay_err(path, "must be an absolute path"));
    }
    if path.exists() {
        return Err(overlay_err(path, "exists already"));
    }
    let image_dir = base_disk
        .parent()
        .filter(|_| base_disk.is_absolute())
        .ok_or_else(|| {
            overlay_err(
                path,
                format!("base {} is no absolute path", base_disk.display()),
            )
        })?;
    let base = overlay_info(base_disk)?.virtual_size;
    if size_bytes < base {
        return Err(overlay_err(
            path,
            format!("{size_bytes} bytes is smaller than its base image's {base}"),
        ));
    }
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(base_disk)
        .arg(path)
        .arg(size_bytes.to_string()))?;
    ImageCache::add_user(image_dir, path)
}

/// `qemu-img info` of an overlay.
pub fn overlay_info(path: &Path) -> Result<OverlayInfo, Error> {
    let json = run(Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path))?;
    serde_json::from_str(&json).map_err(|source| Error::Json {
        what: format!("qemu-img info of {}", path.display()),
        source,
    })
}

/// Removes the overlay `path` and its record in its base image; false if there was none.
pub fn remove_overlay(path: &Path) -> Result<bool, Error> {
    if !path.exists() {
        return Ok(false);
    }
    if let Some(image_dir) = overlay_info(path)?
        .backing
        .as_deref()
        .and_then(Path::parent)
    {
        ImageCache::remove_user(image_dir, path)?;
    }
    std::fs::remove_file(path)
        .map_err(crate::error::io_err(format!("removing {}", path.display())))?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn overlays_are_sparse_sized_and_keep_their_image() {
        if run(Command::new("qemu-img").arg("--version")).is_err() {
            // Written to the real stderr: libtest swallows eprintln! of a passing test.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIP: qemu-img not found (scripts/build-node-image.sh installs qemu-utils)\n",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let image_dir = dir.path().join("key");
        std::fs::create_dir(&image_dir).unwrap();
        let base = image_dir.join("disk.qcow2");
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&base)
            .arg("64M"))
        .unwrap();
        let node = dir.path().join("n0.qcow2");
        let err = create_overlay(&base, &node, 1 << 20).unwrap_err();
        assert!(
            err.to_string()
                .contains("smaller than its base image's 67108864"),
            "{err}"
        );
        create_overlay(&base, &node, 40 << 30).unwrap();
        let info = overlay_info(&node).unwrap();
        assert_eq!(info.virtual_size, 40 << 30);
        assert!(info.actual_size < 1 << 20, "not sparse: {info:?}");
        assert_eq!(info.backing.as_deref(), Some(base.as_path()));
        assert!(create_overlay(&base, &node, 40 << 30).is_err(), "replaced");
        assert_eq!(
            crate::cache::live_users(&image_dir.join("users")),
            std::slice::from_ref(&node)
        );
        assert!(remove_overlay(&node).unwrap());
        assert!(!remove_overlay(&node).unwrap());
        assert!(crate::cache::live_users(&image_dir.join("users")).is_empty());
        assert_eq!(
            std::fs::read_dir(image_dir.join("users")).unwrap().count(),
            0
        );
    }

    #[test]
    fn qemu_img_info_is_read() {
        let json = r#"{"virtual-size": 42949672960, "filename": "n.qcow2", "format": "qcow2",
            "actual-size": 2297856, "backing-filename": "/c/k/disk.qcow2",
            "full-backing-filename": "/c/k/disk.qcow2", "dirty-flag": false}"#;
        let info: OverlayInfo = serde_json::from_str(json).unwrap();
        assert_eq!(
            info,
            OverlayInfo {
                virtual_size: 40 << 30,
                actual_size: 2_297_856,
                backing: Some(PathBuf::from("/c/k/disk.qcow2")),
            }
        );
    }
}
