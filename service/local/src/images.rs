//! The local site's base images: one per package set (an appliance's `%packages`), built from
//! the local package repository and cached (`vcds-image`); every node of that appliance gets a
//! copy-on-write overlay of it as its disk. The expensive part happens once per package set: a
//! second cluster of the same rolls does no package work.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use vcds_image::{AptIndex, BaseImage, ImageCache, LocalRepo, PackageSet};

/// Where images are kept, and how much room they may take.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    /// The cache's directory (`VCDS_CACHE_DIR/images` by default); the local repository is
    /// `repo/` beside it.
    pub dir: PathBuf,
    /// The most the cached images may take, in bytes; least recently used ones go first
    /// (never one a node's disk is made from).
    pub max_bytes: u64,
}

impl ImageConfig {
    /// `vcds_image::cache_root()`'s images, bounded by `max_bytes`.
    pub fn default_with(max_bytes: u64) -> ImageConfig {
        ImageConfig {
            dir: vcds_image::cache_root().join("images"),
            max_bytes,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("base image: {0}")]
pub struct ImageError(#[from] vcds_image::Error);

/// Base images on demand. Blocking: building one takes minutes the first time.
pub struct Images {
    config: ImageConfig,
    /// The apt sources' index, read at the first build (it takes seconds).
    index: Mutex<Option<AptIndex>>,
}

impl Images {
    pub fn new(config: ImageConfig) -> Images {
        Images {
            config,
            index: Mutex::new(None),
        }
    }

    /// The image holding `packages` (and the builder's own), built if no cached one does.
    pub fn image_of(&self, packages: &[String]) -> Result<BaseImage, ImageError> {
        let (suite, arch) = vcds_image::build::host_release()?;
        let set = PackageSet::new(&suite, &arch, packages)?;
        let cache = ImageCache::open(&self.config.dir, self.config.max_bytes)?;
        if let Some(image) = cache.get(&set.key())? {
            return Ok(image);
        }
        let repo_dir = self.config.dir.with_file_name("repo");
        let repo = LocalRepo::open(&repo_dir)?;
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match &mut *index {
            Some(index) => index,
            slot => slot.insert(AptIndex::load(&arch)?),
        };
        let report = cache.build(&set, &repo, index)?;
        tracing::info!(
            key = %set.key(),
            built = report.built,
            fetched = report.fetched.packages,
            seconds = report.seconds,
            "base image"
        );
        Ok(report.image)
    }

    /// Removes every cached image no node's disk uses (`vcds site-down --purge-images`);
    /// returns how many went.
    pub fn purge(config: &ImageConfig) -> Result<usize, ImageError> {
        let cache = ImageCache::open(&config.dir, config.max_bytes)?;
        Ok(cache.purge()?.len())
    }
}
