//! The cache of base images, keyed by content key and bounded in bytes.
//!
//! Layout of the cache directory:
//! - `KEY/`: a complete image (`disk.qcow2`, `vmlinuz`, `initrd.img`, `manifest.json`), its
//!   `last-used` stamp (mtime) and `users/` (symlinks to the overlays made on it);
//! - `KEY.lock`: held by whoever builds, evicts or opens that key;
//! - `.build-KEY/`: an image being built; renamed to `KEY/` only when complete, so a
//!   half-built image is never taken for one (a crashed build's is removed by the next).
//!
//! Eviction removes least recently used images until the cache fits its bound, never one an
//! overlay still uses or one being built.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::io_err;
use crate::lock::{lock, try_lock};
use crate::packages::{ContentKey, PackageSet};
use crate::repo::Fetched;
use crate::tuning::DISK_BOOT_ARGS;
use crate::Error;

const MANIFEST: &str = "manifest.json";
const LAST_USED: &str = "last-used";
const USERS: &str = "users";

/// What an image holds and how it was made (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub key: ContentKey,
    pub builder_version: u32,
    pub set: PackageSet,
    /// `uname -r` of the image's kernel: the installer's must be the same.
    pub kernel_release: String,
    /// Every installed package with its version.
    pub installed: std::collections::BTreeMap<String, String>,
    /// Size of the root filesystem (the qcow2's virtual size).
    pub filesystem_bytes: u64,
    /// What the build fetched into the local repository.
    pub fetched: Fetched,
    pub build_seconds: f64,
}

/// A complete base image in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    dir: PathBuf,
    manifest: Manifest,
}

impl BaseImage {
    /// Reads the image in `dir` (a cache entry).
    pub fn open(dir: &Path) -> Result<BaseImage, Error> {
        let path = dir.join(MANIFEST);
        let bytes = fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
        let manifest = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: path.display().to_string(),
            source,
        })?;
        Ok(BaseImage {
            dir: dir.to_owned(),
            manifest,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn key(&self) -> &ContentKey {
        &self.manifest.key
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The root filesystem (ext4, no partition table) as qcow2: the overlays' backing file.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.qcow2")
    }

    /// The image's own kernel and initramfs, for booting an installed node from its disk.
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }

    pub fn initrd(&self) -> PathBuf {
        self.dir.join("initrd.img")
    }

    /// The kernel command line that boots [`BaseImage::kernel`] into the system on the
    /// VM's first disk.
    pub fn disk_boot_append(&self) -> String {
        format!("root=/dev/vda rw {DISK_BOOT_ARGS}")
    }
}

/// One entry of [`ImageCache::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    pub key: ContentKey,
    /// Bytes on disk (allocated, so a sparse file counts what it holds).
    pub bytes: u64,
    pub last_used: SystemTime,
    /// Overlays that use the image (existing ones only).
    pub users: Vec<PathBuf>,
}

/// What [`ImageCache::get_or_build`] did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub image: BaseImage,
    /// False: the cache had it.
    pub built: bool,
    /// Zero on a cache hit.
    pub fetched: Fetched,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct ImageCache {
    dir: PathBuf,
    max_bytes: u64,
}

fn remove_if_exists(path: &Path) -> Result<(), Error> {
    let removed = if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_err(format!("removing {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Removes a build directory, unmounting first whatever a crashed mmdebstrap left mounted in
/// it (removing through a bind mount of /dev would delete the host's devices).
pub(crate) fn remove_build_dir(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    let mounted = |dir: &Path| -> Vec<String> {
        let prefix = format!("{}/", dir.display());
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .map(str::to_owned)
            .collect()
    };
    let mut mounts = mounted(dir);
    if !mounts.is_empty() {
        tracing::warn!(
            "unmounting what a build left in {}: {mounts:?}",
            dir.display()
        );
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &mounts {
            let _ = std::process::Command::new("umount").arg(m).status();
        }
        let left = mounted(dir);
        if !left.is_empty() {
            return Err(Error::Build(format!(
                "{} still has mounts {left:?}; not removing it",
                dir.display()
            )));
        }
    }
    remove_if_exists(dir)
}

/// Allocated bytes of the files under `path`.
pub(crate) fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let children: u64 = fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| allocated_bytes(&e.path()))
                .sum()
        })
        .unwrap_or(0);
    own + children
}

fn touch(path: &Path, when: SystemTime) -> Result<(), Error> {
    File::create(path)
        .and_then(|f| f.set_modified(when))
        .map_err(io_err(format!("stamping {}", path.display())))
}

impl ImageCache {
    /// Opens (creating) the cache in `dir`, bounded to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<ImageCache, Error> {
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(io_err(format!("resolving {}", dir.display())))?;
        Ok(ImageCache { dir, max_bytes })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, key: &ContentKey) -> PathBuf {
        self.dir.join(key.as_str())
    }

    fn lock_file(&self, key: &ContentKey) -> PathBuf {
        self.dir.join(format!("{key}.lock"))
    }

    /// The image of `key` if the cache has it (then it counts as used now).
    pub fn get(&self, key: &ContentKey) -> Result<Option<BaseImage>, Error> {
        let _lock = lock(&self.lock_file(key))?;
        self.get_locked(key)
    }

    fn get_locked(&self, key: &ContentKey) -> Result<Option<BaseImage>, Error> {
        let dir = self.entry(key);
        if !dir.join(MANIFEST).is_file() {
            return Ok(None);
        }
        touch(&dir.join(LAST_USED), SystemTime::now())?;
        BaseImage::open(&dir).map(Some)
    }

    /// The image of `set`: from the cache, or built from `repo` (mmdebstrap, see
    /// [`crate::build`]); refused, naming them, when `index` lacks some of its packages.
    pub fn build(
        &self,
        set: &PackageSet,
        repo: &crate::repo::LocalRepo,
        index: &crate::apt::AptIndex,
    ) -> Result<BuildReport, Error> {
        index.check(set)?;
        self.get_or_build(&set.key(), |dir| crate::build::build(dir, set, repo, index))
    }

    /// The image of `key`, or the one `build` makes in the (empty, fresh) directory it is
    /// given and describes with its manifest. One builder per key at a time, across
    /// processes: the others wait and take its image. Evicts afterwards.
    pub fn get_or_build(
        &self,
        key: &ContentKey,
        build: impl FnOnce(&Path) -> Result<Manifest, Error>,
    ) -> Result<BuildReport, Error> {
        let started = Instant::now();
        let report = {
            let _lock = lock(&self.lock_file(key))?;
            if let Some(image) = self.get_locked(key)? {
                tracing::info!("base image {key}: cached");
                BuildReport {
                    image,
                    built: false,
                    fetched: Fetched {
                        packages: 0,
                        bytes: 0,
                        pool: 0,
                    },
                    seconds: started.elapsed().as_secs_f64(),
                }
            } else {
                let tmp = self.dir.join(format!(".build-{key}"));
                remove_build_dir(&tmp)?;
                fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
                let manifest = match build(&tmp) {
                    Ok(manifest) if &manifest.key == key => manifest,
                    Ok(manifest) => {
                        let _ = remove_build_dir(&tmp);
                        return Err(Error::Build(format!(
                            "built image {} for key {key}",
                            manifest.key
                        )));
                    }
                    Err(e) => {
                        let _ = remove_build_dir(&tmp);
                        return Err(e);
                    }
                };
                let json = serde_json::to_vec_pretty(&manifest).map_err(|source| Error::Json {
                    what: "manifest".to_owned(),
                    source,
                })?;
                fs::write(tmp.join(MANIFEST), json)
                    .map_err(io_err(format!("writing the manifest in {}", tmp.display())))?;
                touch(&tmp.join(LAST_USED), SystemTime::now())?;
                let dir = self.entry(key);
                // An entry without a manifest is no image (someone's leftover).
                remove_build_dir(&dir)?;
                fs::rename(&tmp, &dir).map_err(io_err(format!("renaming to {}", dir.display())))?;
                tracing::info!(
                    "base image {key}: built in {:.0} s, {} packages fetched",
                    manifest.build_seconds,
                    manifest.fetched.packages
                );
                BuildReport {
                    image: BaseImage::open(&dir)?,
                    built: true,
                    fetched: manifest.fetched,
                    seconds: started.elapsed().as_secs_f64(),
                }
            }
        };
        self.evict(Some(key))?;
        Ok(report)
    }

    /// Every complete image, least recently used first.
    pub fn list(&self) -> Result<Vec<CachedImage>, Error> {
        let entries =
            fs::read_dir(&self.dir).map_err(io_err(format!("reading {}", self.dir.display())))?;
        let mut images = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let Ok(key) = ContentKey::try_from(entry.file_name().to_string_lossy().into_owned())
            else {
                continue;
            };
            let dir = entry.path();
            if !dir.join(MANIFEST).is_file() {
                continue;
            }
            let last_used = fs::metadata(dir.join(LAST_USED))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            images.push(CachedImage {
                key,
                bytes: allocated_bytes(&dir),
                last_used,
                users: live_users(&dir.join(USERS)),
            });
        }
        images.sort_by(|a, b| (a.last_used, &a.key).cmp(&(b.last_used, &b.key)));
        Ok(images)
    }

    /// Removes least recently used images until the cache fits its bound; `keep`, images an
    /// overlay uses and images someone holds the lock of stay. Returns the removed keys.
    pub fn evict(&self, keep: Option<&ContentKey>) -> Result<Vec<ContentKey>, Error> {
        let images = self.list()?;
        let mut total: u64 = images.iter().map(|i| i.bytes).sum();
        let mut removed = Vec::new();
        for image in images {
            if total <= self.max_bytes {
                break;
            }
            if Some(&image.key) == keep || !image.users.is_empty() {
                continue;
            }
            if self.remove(&image.key)? {
                total = total.saturating_sub(image.bytes);
                removed.push(image.key);
            }
        }
        if total > self.max_bytes {
            tracing::warn!(
                "image cache {}: {total} bytes in use or kept, over its bound of {}",
                self.dir.display(),
                self.max_bytes
            );
        }
        Ok(removed)
    }

    /// Removes every image no overlay uses and nobody holds. Returns the removed keys.
    pub fn purge(&self) -> Result<Vec<ContentKey>, Error> {
        let mut removed = Vec::new();
        for image in self.list()? {
            if image.users.is_empty() && self.remove(&image.key)? {
                removed.push(image.key);
            }
        }
        Ok(removed)
    }

    /// Removes the image of `key` unless its lock is held or an overlay uses it (checked
    /// again under the lock).
    fn remove(&self, key: &ContentKey) -> Result<bool, Error> {
        let Some(_lock) = try_lock(&self.lock_file(key))? else {
            return Ok(false);
        };
        let dir = self.entry(key);
        if !live_users(&dir.join(USERS)).is_empty() {
            return Ok(false);
        }
        // Renamed away first: the removal of a big tree is not atomic, the rename is.
        let doomed = self.dir.join(format!(".evict-{key}"));
        fs::rename(&dir, &doomed).map_err(io_err(format!("removing {}", dir.display())))?;
        remove_if_exists(&doomed)?;
        remove_if_exists(&self.lock_file(key))?;
        tracing::info!("image cache {}: removed {key}", self.dir.display());
        Ok(true)
    }

    /// Records that the overlay at `overlay` uses the image in `image_dir`: it is not evicted while that file
    /// exists.
    pub(crate) fn add_user(image_dir: &Path, overlay: &Path) -> Result<(), Error> {
        let users = image_dir.join(USERS);
        fs::create_dir_all(&users).map_err(io_err(format!("creating {}", users.display())))?;
        let link = users.join(user_link_name(overlay));
        remove_if_exists(&link)?;
        std::os::unix::fs::symlink(overlay, &link)
            .map_err(io_err(format!("linking {}", link.display())))
    }

    /// Forgets the overlay at `overlay` as a user of the image whose disk it is backed by.
    pub(crate) fn remove_user(image_dir: &Path, overlay: &Path) -> Result<(), Error> {
        remove_if_exists(&image_dir.join(USERS).join(user_link_name(overlay)))
    }
}

fn user_link_name(overlay: &Path) -> String {
    crate::packages::hex_sha256(overlay.as_os_str().as_encoded_bytes())[..32].to_owned()
}

/// The overlays `users` links to that still exist; links to removed ones are cleared.
pub(crate) fn live_users(users: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(users) else {
        return Vec::new();
    };
    let mut live = Vec::new();
    for link in entries.filter_map(Result::ok).map(|e| e.path()) {
        match fs::read_link(&link) {
            Ok(target) if target.exists() => live.push(target),
            _ => {
                let _ = fs::remove_file(&link);
            }
        }
    }
    live.sort();
    live
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn set(name: &str) -> PackageSet {
        PackageSet::new("bookworm", "amd64", [name]).unwrap()
    }

    /// A stand-in builder: a disk file of `bytes` and the manifest of `set`.
    fn fake_build(set: &PackageSet, bytes: usize) -> impl FnOnce(&Path) -> Result<Manifest, Error> {
        let set = set.clone();
        move |dir| {
            fs::write(dir.join("disk.qcow2"), vec![1u8; bytes]).unwrap();
            Ok(Manifest {
                key: set.key(),
                builder_version: crate::BUILDER_VERSION,
                set,
                kernel_release: "6.1.0-test".to_owned(),
                installed: Default::default(),
                filesystem_bytes: 1 << 20,
                fetched: Fetched {
                    packages: 3,
                    bytes: 300,
                    pool: 3,
                },
                build_seconds: 0.0,
            })
        }
    }

    #[test]
    fn a_built_image_is_a_cache_hit_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ImageCache::open(dir.path(), u64::MAX).unwrap();
        let s = set("munge");
        assert!(cache.get(&s.key()).unwrap().is_none());
        let first = cache.get_or_build(&s.key(), fake_build(&s, 10)).unwrap();
        assert!(first.built);
        assert_eq!(first.fetched.packages, 3);
        assert_eq!(first.image.key(), &s.key());
        assert!(first.image.disk().is_file());
        let second = cache
            .get_or_build(&s.key(), |_| panic!("must not build again"))
            .unwrap();
        assert!(!second.built);
        assert_eq!(second.fetched.packages, 0);
        assert_eq!(second.image, first.image);
        assert_eq!(
            second.image.disk_boot_append(),
            format!("root=/dev/vda rw {DISK_BOOT_ARGS}")
        );
    }

    #[test]
    fn a_failed_or_crashed_build_leaves_no_image() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ImageCache::open(dir.path(), u64::MAX).unwrap();
        let s = set("munge");
        let err = cache
            .get_or_build(&s.key(), |dir| {
                fs::write(dir.join("disk.qcow2"), "half").unwrap();
                Err(Error::Build("mmdebstrap failed".to_owned()))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "mmdebstrap failed");
        assert!(cache.get(&s.key()).unwrap().is_none());
        assert!(!dir.path().join(format!(".build-{}", s.key())).exists());
        // A crash mid-build (here: a panic) leaves its directory; it is never an image, and
        // the next build starts afresh.
        let crashed = std::panic::catch_unwind(|| {
            let _ = cache.get_or_build(&s.key(), |dir| {
                fs::write(dir.join("stale"), "x").unwrap();
                panic!("killed");
            });
        });
        assert!(crashed.is_err());
        assert!(cache.list().unwrap().is_empty());
        let built = cache
            .get_or_build(&s.key(), |dir| {
                assert!(!dir.join("stale").exists());
                fake_build(&s, 10)(dir)
            })
            .unwrap();
        assert!(built.built);
        // A builder that makes another key's image is refused.
        let other = set("slurmd");
        let err = cache
            .get_or_build(&other.key(), fake_build(&s, 10))
            .unwrap_err();
        assert!(err.to_string().starts_with("built image"), "{err}");
    }

    #[test]
    fn concurrent_builders_of_one_key_build_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ImageCache::open(dir.path(), u64::MAX).unwrap());
        let builds = Arc::new(AtomicUsize::new(0));
        let s = set("munge");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (cache, builds, s) = (cache.clone(), builds.clone(), s.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_build(&s.key(), |dir| {
                            builds.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(200));
                            fake_build(&s, 10)(dir)
                        })
                        .unwrap()
                        .built
                })
            })
            .collect();
        let built: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert_eq!(built.iter().filter(|b| **b).count(), 1);
    }

    #[test]
    fn eviction_is_lru_within_the_bound_and_spares_used_images() {
        let dir = tempfile::tempdir().unwrap();
        // Room for about two images of 64 KiB.
        let cache = ImageCache::open(dir.path(), 150 * 1024).unwrap();
        let sets: Vec<PackageSet> = ["aa", "bb", "cc"].into_iter().map(set).collect();
        let epoch = SystemTime::UNIX_EPOCH;
        for (i, s) in sets[..2].iter().enumerate() {
            cache
                .get_or_build(&s.key(), fake_build(s, 64 * 1024))
                .unwrap();
            let stamp = cache.entry(&s.key()).join(LAST_USED);
            touch(&stamp, epoch + Duration::from_secs(100 * (i as u64 + 1))).unwrap();
        }
        // "aa" is used by an overlay: "bb", although newer, goes.
        let aa = cache.get(&sets[0].key()).unwrap().unwrap();
        let overlay = dir.path().join("node.qcow2");
        fs::write(&overlay, "").unwrap();
        ImageCache::add_user(aa.dir(), &overlay).unwrap();
        touch(&aa.dir().join(LAST_USED), epoch).unwrap();
        cache
            .get_or_build(&sets[2].key(), fake_build(&sets[2], 64 * 1024))
            .unwrap();
        let keys: Vec<ContentKey> = cache.list().unwrap().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, [sets[0].key(), sets[2].key()]);
        assert_eq!(
            cache.list().unwrap()[0].users,
            std::slice::from_ref(&overlay)
        );
        // Purge spares it too, until its overlay is gone.
        assert_eq!(cache.purge().unwrap(), [sets[2].key()]);
        fs::remove_file(&overlay).unwrap();
        assert_eq!(cache.purge().unwrap(), [sets[0].key()]);
        assert!(cache.list().unwrap().is_empty());
    }

    #[test]
    fn an_image_being_built_is_not_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ImageCache::open(dir.path(), 0).unwrap();
        let s = set("aa");
        let built = cache.get_or_build(&s.key(), fake_build(&s, 4096)).unwrap();
        // The one just built stays even over the bound; a locked one stays too.
        assert!(built.image.disk().is_file());
        let held = lock(&cache.lock_file(&s.key())).unwrap();
        assert!(cache.evict(None).unwrap().is_empty());
        drop(held);
        assert_eq!(cache.evict(None).unwrap(), [s.key()]);
    }
}
