//! Base images of virtual nodes, the way a Rocks frontend serves a distribution: one Debian
//! root per package set, built from a local package repository and cached by content key,
//! shared copy-on-write by every node that installs it.
//!
//! - [`packages`]: the package set (sorted, unique, with the builder's mandatory packages) and
//!   its content key (pure).
//! - [`apt`]: which packages the provider's apt sources hold, so a caller can refuse a
//!   package no source holds, naming it.
//! - [`repo`]: the local repository: .debs fetched once from apt's sources, indexed with
//!   apt-ftparchive; a second set fetches only what is missing.
//! - [`tuning`]: what the builder changes in the root for a fast boot under TCG (pure).
//! - [`build`] and [`cache`]: mmdebstrap from the local repository → `mke2fs -d` → qcow2, the
//!   image's kernel and initramfs beside it; the cache bounded in bytes (LRU), one builder
//!   per key (lock file), complete images only (build under a temporary name, rename).
//! - [`overlay`]: a node's disk, a sparse qcow2 overlay of its booked size.
//!
//! Building needs root and Debian's mmdebstrap, apt-utils (apt-ftparchive), e2fsprogs and
//! qemu-utils (`scripts/build-node-image.sh` installs them). By hand:
//! `cargo run -p vcds-image --example vcds-image -- --help`.

pub mod apt;
pub mod build;
pub mod cache;
mod cmd;
mod error;
mod lock;
pub mod overlay;
pub mod packages;
pub mod repo;
pub mod tuning;

pub use apt::AptIndex;
pub use cache::{BaseImage, BuildReport, CachedImage, ImageCache, Manifest};
pub use error::Error;
pub use overlay::{create_overlay, overlay_info, remove_overlay, OverlayInfo};
pub use packages::{ContentKey, PackageSet, BUILDER_VERSION};
pub use repo::{Fetched, LocalRepo};

/// The directory vcds keeps its caches in (the node image of `scripts/build-node-image.sh`,
/// base images under `images/`, the local repository under `repo/`): `VCDS_CACHE_DIR`, or
/// `/var/cache/vcds`.
pub fn cache_root() -> std::path::PathBuf {
    std::env::var_os("VCDS_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/cache/vcds"))
}
